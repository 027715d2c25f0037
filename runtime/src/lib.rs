//! Hotline runtime: safe points for save-to-patch hot reloading.
//!
//! Wrap the work your program repeats in [`call`]; when the app was launched by the
//! Hotline engine, patches arrive on a background thread and take effect the next
//! time a `call` runs. In release builds (no `debug_assertions`) `call(f)` is `f()`.
//!
//! ```no_run
//! fn tick() { println!("tick"); }
//! loop {
//!     hotline::call(tick);
//!     std::thread::sleep(std::time::Duration::from_millis(100));
//! }
//! ```

#[cfg(debug_assertions)]
mod channel;
#[cfg(debug_assertions)]
mod debug;
#[cfg(debug_assertions)]
mod json;
#[cfg(debug_assertions)]
mod jumps;
#[cfg(debug_assertions)]
mod loader;
#[cfg(debug_assertions)]
mod program;
#[cfg(debug_assertions)]
mod quiet_stop;
#[cfg(debug_assertions)]
mod receipts;
#[cfg(debug_assertions)]
mod settings;
#[cfg(debug_assertions)]
mod stop;
#[cfg(debug_assertions)]
mod sys;
#[cfg(debug_assertions)]
mod table;

#[cfg(all(test, debug_assertions))]
mod testing {
    /// xorshift64*: deterministic pseudo-random cases without a dependency.
    pub struct Rng(pub u64);

    impl Rng {
        pub fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        pub fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }
}

/// The function a safe point really calls. Its monomorphisation for the caller's
/// closure lives in the caller's crate, so every patch of that crate carries a new
/// copy; the jump table maps the old copy's address to the new one.
#[cfg(debug_assertions)]
trait HotFn<R> {
    fn hot_call(self) -> R;
}

#[cfg(debug_assertions)]
impl<F: FnOnce() -> R, R> HotFn<R> for F {
    #[inline(never)]
    fn hot_call(self) -> R {
        self()
    }
}

/// Runs `f` at a safe point: if a patch replaced `f`'s code, the newest version runs.
///
/// Handlers registered with [`on_patch`] run first, on this thread, once per applied patch.
#[cfg(debug_assertions)]
pub fn call<F: FnOnce() -> R, R>(f: F) -> R {
    table::ensure_started();
    if !table::any_patch_applied() {
        return f();
    }
    table::run_pending_handlers();
    let original = <F as HotFn<R>>::hot_call as fn(F) -> R;
    match table::current(original as usize) {
        // SAFETY: `new` is the address of the same monomorphisation of `hot_call::<F, R>`,
        // compiled from the same crate with the same closure type (the engine refuses a
        // patch that changes the closure's signature or captures), so it has the ABI of
        // `fn(F) -> R`. Its code was mapped executable by the loader before the table entry
        // was published, and patch memory is never unmapped while the process lives.
        Some(new) => unsafe { std::mem::transmute::<usize, fn(F) -> R>(new)(f) },
        None => original(f),
    }
}

/// Runs `f`: release builds carry no hot-reload machinery.
#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn call<F: FnOnce() -> R, R>(f: F) -> R {
    f()
}

/// Registers `handler` to run after each applied patch, at the next [`call`], on that call's thread.
pub fn on_patch(handler: impl Fn() + Send + Sync + 'static) {
    #[cfg(debug_assertions)]
    {
        table::ensure_started();
        table::add_handler(Box::new(handler));
    }
    #[cfg(not(debug_assertions))]
    drop(handler);
}

/// How many patches this process has applied (0 in release builds).
pub fn patches_applied() -> usize {
    #[cfg(debug_assertions)]
    {
        table::patches_applied()
    }
    #[cfg(not(debug_assertions))]
    {
        0
    }
}

/// A function whose runtime address tells the engine the executable's ASLR slide.
#[cfg(debug_assertions)]
#[no_mangle]
#[inline(never)]
pub extern "C" fn hotline_aslr_anchor() -> usize {
    hotline_aslr_anchor as *const () as usize
}

/// Connects to the engine as the process starts, so patches can arrive before the first
/// [`call`] (a server may wait a long time for its first request).
#[cfg(all(debug_assertions, target_os = "linux"))]
#[used]
#[link_section = ".init_array"]
static CONNECT_AT_START: extern "C" fn() = {
    extern "C" fn connect_at_start() {
        table::ensure_started();
    }
    connect_at_start
};
