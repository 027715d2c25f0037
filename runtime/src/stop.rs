//! Stop-the-world by signal: every other thread of the process held still for a moment, so
//! the patcher can rewrite code they might be running (Linux x86-64, glibc).
//!
//! This is the fallback stop. The engine normally holds the threads itself with ptrace
//! (`server/hotline/engine/app/thread_stop.py`), which the app cannot observe; this one is used
//! when ptrace is not available (a debugger attached, no permission). Its handler runs in
//! every thread, so a system call signal(7) does not restart after a handler (a socket call
//! with a timeout, `epoll_wait`, `poll`, `nanosleep`...) fails with EINTR, as it does under
//! any debugger's stops, and a thread that blocks the signal fails the stop.
//!
//! How: the patcher (the channel thread) sends a dedicated real-time signal to every other
//! thread with `tgkill`; the handler records where the thread was interrupted and waits on
//! a futex until the patcher releases the stop's generation.
//!
//! Why it is sound:
//! - A stopped thread sits in the handler, which the kernel entered at an instruction
//!   boundary of the interrupted code; the `ucontext` holds that boundary's RIP. Until
//!   released it executes no application code, so bytes it is not in the middle of may be
//!   rewritten (the caller skips a window a recorded RIP lies strictly inside).
//! - Every thread is caught: after all listed threads have arrived, the patcher lists
//!   `/proc/self/task` again and signals any new tid. Only a running thread creates threads,
//!   so a listing with no new tid while every listed thread is stopped covers them all (a
//!   thread created just before its creator stopped shows up in that listing; exited tids
//!   are dropped when `tgkill(pid, tid, 0)` says ESRCH).
//! - No deadlock: the handler is async-signal-safe (atomics on static memory, raw
//!   `gettid`/`futex` system calls, errno saved and restored); between the first signal and
//!   the release the patcher does not allocate, lock or print (a stopped thread may hold the
//!   malloc or stderr lock): its buffers are allocated before, and errors are formatted after.
//! - A thread's arrival is one compare-and-swap of its slot from "pending in this stop's
//!   generation" to its RIP, so a handler left over from an earlier stop (a late signal)
//!   can neither claim nor overwrite a slot of the current one; it returns at once.
//! - One stop at a time (a mutex), and the patcher never signals itself.
//! - Released threads execute CPUID, a serializing instruction, before returning to the
//!   interrupted code: the Intel SDM's cross-modifying-code protocol, so no core runs stale
//!   prefetched bytes of rewritten code.
//! - The app is spared what it can be: the signal is the highest real-time one whose
//!   disposition is SIG_DFL, so an app's own handler is never replaced, and the disposition
//!   is checked again before every stop (an app that reset it to SIG_DFL would be killed by
//!   it); SA_RESTART resumes the system calls the kernel can restart (a `read` on a pipe sees
//!   no EINTR); SA_ONSTACK uses the thread's alternate stack if it has one; all signals are
//!   blocked inside the handler, and on the patcher while it writes (no handler of the app
//!   runs half-rewritten code on it).
//! - Bounded: if a thread has not arrived within 200 ms (it blocks the signal, say), every
//!   thread is released and the caller gets an error naming it; nothing was rewritten.
//!
//! Limit: a thread interrupted inside a window by some other signal, whose handler is
//! running when we stop it, is recorded at the handler's RIP, not at the window's.

use crate::sys;
use std::ffi::c_int;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The most threads one stop can hold; with more the stop fails.
const MAX_THREADS: usize = 4096;
/// How long a stop waits for every thread to arrive in the handler.
const ARRIVAL_BOUND: Duration = Duration::from_millis(200);
/// Byte offset of `uc_mcontext.gregs[REG_RIP]` in glibc's x86-64 `ucontext_t`: the
/// general registers start at byte 40 and REG_RIP is register 16.
const UCONTEXT_RIP: usize = 40 + 16 * 8;
/// A slot's state is one word: the stop's generation (low 16 bits) above a 48-bit payload,
/// the thread's RIP once it arrived, or one of these two markers. Being one word, the
/// arrival is a single compare-and-swap from "pending in generation g": a handler left over
/// from an earlier stop can never claim, or overwrite, a slot of the current one.
const PAYLOAD: u64 = (1 << 48) - 1;
const PENDING: u64 = PAYLOAD;
const GONE: u64 = PAYLOAD - 1;
/// User-space code lies below 2^47; a higher RIP is clamped, and lies in no window.
const MAX_RIP: u64 = PAYLOAD - 2;

fn state(gen: u32, payload: u64) -> u64 {
    (u64::from(gen & 0xffff) << 48) | payload
}

/// One thread the current stop waits for; assigned by the patcher, claimed by that thread.
struct Slot {
    tid: AtomicI32,
    state: AtomicU64,
}

/// Odd while a stop is active; stopped threads wait on it as a futex until it changes.
static GENERATION: AtomicU32 = AtomicU32::new(0);
static SLOTS: [Slot; MAX_THREADS] = [const {
    Slot {
        tid: AtomicI32::new(0),
        state: AtomicU64::new(0),
    }
}; MAX_THREADS];
static SLOTS_USED: AtomicUsize = AtomicUsize::new(0);
/// The signal the handler is installed on (0: not yet); checked again before every stop.
static SIGNAL: AtomicI32 = AtomicI32::new(0);
/// One stop at a time: a second patcher would be stopped by the first.
static PATCHER: Mutex<()> = Mutex::new(());

/// Runs `f` while every other thread of the process is stopped, then releases them all.
/// `f` gets each stopped thread's RIP: the address of the instruction it will run next.
///
/// `f` must not allocate, lock or print: a stopped thread may hold the lock it needs.
/// Returns what `f` returned and how long the other threads were held, in microseconds;
/// or why they could not all be stopped (then `f` did not run).
pub fn with_world_stopped<R>(f: impl FnOnce(&[u64]) -> R) -> Result<(R, u64), String> {
    let _one_patcher = PATCHER.lock().unwrap_or_else(|e| e.into_inner());
    let sig = stop_signal()?;
    // No handler of the app runs on this thread while it rewrites code the handler may run.
    let mask = sys::block_all_signals();
    let _unblock = Unblock(mask);
    let mut world = World {
        listing: vec![0; 64 << 10],
        stopped: Vec::with_capacity(MAX_THREADS),
        pid: std::process::id() as i32,
        me: sys::gettid(),
        sig,
    };
    let started = Instant::now();
    let result = {
        let release = Release::begin();
        world.stop(release.0).map(|()| f(&world.stopped))
    };
    let held_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    match result {
        Ok(r) => Ok((r, held_us)),
        Err(failure) => Err(failure.describe()),
    }
}

/// Restores the patcher's signal mask when the stop is over.
struct Unblock(u64);

impl Drop for Unblock {
    fn drop(&mut self) {
        sys::restore_signals(self.0);
    }
}

/// The stop signal, its handler (re)installed if the app changed its disposition since the
/// last stop: an app that reset it to SIG_DFL would be killed by it, one that took it over
/// would run its own handler. Called with the patcher lock held.
fn stop_signal() -> Result<c_int, String> {
    let ours = on_stop_signal as extern "C" fn(c_int, *mut std::ffi::c_void, *mut std::ffi::c_void)
        as usize;
    let sig = SIGNAL.load(Ordering::Relaxed);
    if sig != 0 && handler_of(sig) == Some(ours) {
        return Ok(sig);
    }
    let sig = install_handler()?;
    SIGNAL.store(sig, Ordering::Relaxed);
    Ok(sig)
}

/// The handler address installed for `sig` (0 for SIG_DFL), if sigaction answers.
fn handler_of(sig: c_int) -> Option<usize> {
    let mut current = sys::SigAction {
        handler: 0,
        mask: sys::SigSet([0; 16]),
        flags: 0,
        restorer: 0,
    };
    // SAFETY: with a null new action, sigaction only writes the current one to `current`.
    (unsafe { sys::sigaction(sig, std::ptr::null(), &mut current) } == 0).then_some(current.handler)
}

/// Starts a stop generation; dropping it releases every thread (also if `f` panicked).
struct Release(u32);

impl Release {
    fn begin() -> Release {
        SLOTS_USED.store(0, Ordering::Release);
        Release(GENERATION.fetch_add(1, Ordering::AcqRel).wrapping_add(1))
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        GENERATION.store(self.0.wrapping_add(1), Ordering::Release);
        sys::futex_wake_all(&GENERATION);
    }
}

/// Why a stop failed; described only after the release, when allocating is safe again.
enum Failure {
    Listing(c_int),
    TooManyThreads,
    Signal(i32, c_int),
    NotArrived(i32),
}

impl Failure {
    fn describe(&self) -> String {
        let os = |e: c_int| std::io::Error::from_raw_os_error(e);
        match *self {
            Failure::Listing(e) => format!("cannot list this process's threads: {}", os(e)),
            Failure::TooManyThreads => {
                format!("the app has more than {MAX_THREADS} threads to stop")
            }
            Failure::Signal(tid, e) => format!("cannot signal thread {}: {}", named(tid), os(e)),
            Failure::NotArrived(tid) => format!(
                "thread {} did not stop within {} ms (does it block signals?)",
                named(tid),
                ARRIVAL_BOUND.as_millis()
            ),
        }
    }
}

/// `tid (name)`, the name read from /proc.
fn named(tid: i32) -> String {
    match std::fs::read_to_string(format!("/proc/self/task/{tid}/comm")) {
        Ok(name) => format!("{tid} ({})", name.trim_end()),
        Err(_) => tid.to_string(),
    }
}

/// The patcher's side of one stop; its buffers are allocated before the first signal.
struct World {
    listing: Vec<u8>,
    stopped: Vec<u64>,
    pid: i32,
    me: i32,
    sig: c_int,
}

impl World {
    /// Signals every other thread and waits until each has arrived or exited.
    fn stop(&mut self, gen: u32) -> Result<(), Failure> {
        let deadline = Instant::now() + ARRIVAL_BOUND;
        while self.signal_new_threads(gen)? > 0 {
            self.wait_for_arrivals(gen, deadline)?;
        }
        self.stopped.clear();
        for slot in SLOTS.iter().take(SLOTS_USED.load(Ordering::Acquire)) {
            let now = slot.state.load(Ordering::Acquire);
            let rip = now & PAYLOAD;
            if now == state(gen, rip) && rip <= MAX_RIP && self.stopped.len() < MAX_THREADS {
                self.stopped.push(rip);
            }
        }
        Ok(())
    }

    /// Lists /proc/self/task and signals each thread not yet signalled in this stop.
    fn signal_new_threads(&mut self, gen: u32) -> Result<usize, Failure> {
        let dir = sys::open_dir(c"/proc/self/task").map_err(Failure::Listing)?;
        let mut new = 0;
        loop {
            let n = sys::getdents64(std::os::fd::AsFd::as_fd(&dir), &mut self.listing)
                .map_err(Failure::Listing)?;
            if n == 0 {
                return Ok(new);
            }
            for tid in tids(self.listing.get(..n).unwrap_or_default()) {
                let used = SLOTS_USED.load(Ordering::Relaxed);
                let seen = SLOTS
                    .iter()
                    .take(used)
                    .any(|s| s.tid.load(Ordering::Relaxed) == tid);
                if tid == self.me || seen {
                    continue;
                }
                let slot = SLOTS.get(used).ok_or(Failure::TooManyThreads)?;
                slot.state.store(state(gen, PENDING), Ordering::Relaxed);
                slot.tid.store(tid, Ordering::Relaxed);
                SLOTS_USED.store(used + 1, Ordering::Release);
                match sys::tgkill(self.pid, tid, self.sig) {
                    Ok(()) => {}
                    Err(sys::ESRCH) => slot.state.store(state(gen, GONE), Ordering::Relaxed),
                    Err(e) => return Err(Failure::Signal(tid, e)),
                }
                new += 1;
            }
        }
    }

    /// Waits until every signalled thread has arrived in the handler or exited.
    fn wait_for_arrivals(&self, gen: u32, deadline: Instant) -> Result<(), Failure> {
        loop {
            let mut waiting = None;
            for slot in SLOTS.iter().take(SLOTS_USED.load(Ordering::Acquire)) {
                if slot.state.load(Ordering::Acquire) != state(gen, PENDING) {
                    continue; // arrived, or gone
                }
                let tid = slot.tid.load(Ordering::Relaxed);
                if sys::tgkill(self.pid, tid, 0) == Err(sys::ESRCH) {
                    // Exited: it runs nothing any more, and cannot arrive any more.
                    slot.state.store(state(gen, GONE), Ordering::Relaxed);
                } else {
                    waiting = waiting.or(Some(tid));
                }
            }
            match waiting {
                None => return Ok(()),
                Some(tid) if Instant::now() >= deadline => return Err(Failure::NotArrived(tid)),
                Some(_) => std::thread::sleep(Duration::from_micros(20)),
            }
        }
    }
}

/// The thread ids in a buffer of `linux_dirent64` records (`.` and `..` are skipped).
fn tids(mut records: &[u8]) -> impl Iterator<Item = i32> + '_ {
    std::iter::from_fn(move || loop {
        // d_ino: u64, d_off: i64, d_reclen: u16, d_type: u8, then the NUL-terminated name.
        let reclen = records.get(16..18)?;
        let reclen = usize::from(u16::from_ne_bytes([reclen[0], reclen[1]]));
        let record = records.get(..reclen).filter(|_| reclen > 19)?;
        records = records.get(reclen..)?;
        let name = record.get(19..)?;
        let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
        if let Some(tid) = parse_tid(name) {
            return Some(tid);
        }
    })
}

fn parse_tid(name: &[u8]) -> Option<i32> {
    if name.is_empty() || !name.iter().all(u8::is_ascii_digit) {
        return None;
    }
    name.iter().try_fold(0i32, |n, &d| {
        n.checked_mul(10)?.checked_add(i32::from(d - b'0'))
    })
}

/// Installs the stop handler on the highest real-time signal nobody handles yet.
fn install_handler() -> Result<c_int, String> {
    // SAFETY: these glibc functions only report the real-time signal range.
    let (low, high) = unsafe {
        (
            sys::__libc_current_sigrtmin(),
            sys::__libc_current_sigrtmax(),
        )
    };
    for sig in (low..=high).rev() {
        let mut current = sys::SigAction {
            handler: 0,
            mask: sys::SigSet([0; 16]),
            flags: 0,
            restorer: 0,
        };
        // SAFETY: with a null new action, sigaction only writes the current one to `current`.
        if unsafe { sys::sigaction(sig, std::ptr::null(), &mut current) } != 0
            || current.handler != sys::SIG_DFL
        {
            continue;
        }
        let handler: extern "C" fn(c_int, *mut std::ffi::c_void, *mut std::ffi::c_void) =
            on_stop_signal;
        let mut action = sys::SigAction {
            handler: handler as usize,
            mask: sys::SigSet([0; 16]),
            flags: sys::SA_SIGINFO | sys::SA_RESTART | sys::SA_ONSTACK,
            restorer: 0,
        };
        // SAFETY: sigfillset only writes the set it is given.
        unsafe { sys::sigfillset(&mut action.mask) };
        // SAFETY: the handler has the SA_SIGINFO signature, is async-signal-safe (module
        // doc) and lives as long as the process; the signal had no handler to displace.
        if unsafe { sys::sigaction(sig, &action, std::ptr::null_mut()) } == 0 {
            return Ok(sig);
        }
    }
    Err("no real-time signal is free to stop threads with".into())
}

/// Holds the interrupted thread until the active stop is released (async-signal-safe).
extern "C" fn on_stop_signal(
    _sig: c_int,
    _info: *mut std::ffi::c_void,
    context: *mut std::ffi::c_void,
) {
    let saved_errno = sys::errno();
    let gen = GENERATION.load(Ordering::Acquire);
    if gen % 2 == 1 && !context.is_null() {
        let tid = sys::gettid();
        let used = SLOTS_USED.load(Ordering::Acquire);
        if let Some(slot) = SLOTS
            .iter()
            .take(used)
            .find(|s| s.tid.load(Ordering::Relaxed) == tid)
        {
            // SAFETY: for an SA_SIGINFO handler the kernel passes a valid ucontext_t, whose
            // saved RIP is at UCONTEXT_RIP (glibc x86-64 layout), 8-aligned.
            let rip = unsafe { context.cast::<u8>().add(UCONTEXT_RIP).cast::<u64>().read() };
            let arrived = slot.state.compare_exchange(
                state(gen, PENDING),
                state(gen, rip.min(MAX_RIP)),
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
            if arrived.is_ok() {
                while GENERATION.load(Ordering::Acquire) == gen {
                    sys::futex_wait(&GENERATION, gen);
                }
                sys::serialize();
            }
        }
    }
    sys::set_errno(saved_errno);
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    /// Serializes the tests that stop the world or block its signal.
    pub static STOP_TESTS: Mutex<()> = Mutex::new(());

    pub fn serial() -> std::sync::MutexGuard<'static, ()> {
        STOP_TESTS.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[test]
    fn holds_spinning_threads_still_and_a_blocked_read_sees_no_eintr() {
        let _serial = serial();
        let done = Arc::new(AtomicBool::new(false));
        let counters: Arc<[AtomicU64; 3]> = Arc::new(Default::default());
        let spinners: Vec<_> = (0..3)
            .map(|i| {
                let (done, counters) = (done.clone(), counters.clone());
                std::thread::spawn(move || {
                    while !done.load(Ordering::Relaxed) {
                        counters[i].fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        let (mut pipe_out, mut pipe_in) = std::io::pipe().unwrap();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 5];
            pipe_out.read_exact(&mut buf).map(|()| buf)
        });
        std::thread::sleep(Duration::from_millis(50)); // the reader is now blocked in read()
        let snapshot = || counters.each_ref().map(|c| c.load(Ordering::SeqCst));
        let ((before, after, stopped), held_us) = with_world_stopped(|threads| {
            let before = snapshot();
            std::thread::sleep(Duration::from_millis(30));
            (before, snapshot(), threads.len())
        })
        .unwrap();
        assert_eq!(before, after, "spinning threads ran while stopped");
        assert!(stopped >= 4, "only {stopped} threads stopped"); // 3 spinners, the reader
        assert!(held_us >= 30_000, "{held_us}");
        std::thread::sleep(Duration::from_millis(30));
        let released = snapshot();
        assert!(
            released.iter().zip(after).all(|(r, a)| *r > a),
            "threads stayed stopped"
        );
        pipe_in.write_all(b"hello").unwrap();
        assert_eq!(&reader.join().unwrap().unwrap(), b"hello"); // no EINTR
        done.store(true, Ordering::SeqCst);
        spinners.into_iter().for_each(|t| t.join().unwrap());
    }

    extern "C" {
        fn pthread_sigmask(how: c_int, set: *const sys::SigSet, old: *mut sys::SigSet) -> c_int;
    }

    #[test]
    fn a_thread_that_blocks_the_signal_fails_the_stop_by_name_and_is_released() {
        let _serial = serial();
        let (blocked_tx, blocked_rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let stubborn = std::thread::Builder::new()
            .name("stubborn".into())
            .spawn(move || {
                let mut all = sys::SigSet([0; 16]);
                // SAFETY: fills a local set, then blocks those signals for this thread only.
                unsafe {
                    sys::sigfillset(&mut all);
                    pthread_sigmask(0 /* SIG_BLOCK */, &all, std::ptr::null_mut());
                }
                blocked_tx.send(sys::gettid()).unwrap();
                go_rx.recv().unwrap();
                // SAFETY: unblocks them again: the pending, late stop signal now runs its
                // handler, which must return at once.
                unsafe {
                    pthread_sigmask(1 /* SIG_UNBLOCK */, &all, std::ptr::null_mut())
                };
                7
            })
            .unwrap();
        let tid = blocked_rx.recv().unwrap();
        let ran = AtomicBool::new(false);
        let err = with_world_stopped(|_| ran.store(true, Ordering::SeqCst)).unwrap_err();
        assert!(!ran.load(Ordering::SeqCst));
        assert!(
            err.contains(&format!("thread {tid} (stubborn) did not stop")),
            "{err}"
        );
        go_tx.send(()).unwrap();
        assert_eq!(stubborn.join().unwrap(), 7);
        assert!(with_world_stopped(|_| ()).is_ok()); // and the next stop works
    }

    #[test]
    fn reads_thread_ids_from_directory_records() {
        let mut buf = Vec::new();
        for name in [&b"."[..], b"..", b"12", b"345678", b"x1"] {
            let reclen = (19 + name.len() + 1).next_multiple_of(8);
            let mut rec = vec![0u8; reclen];
            rec[16..18].copy_from_slice(&(reclen as u16).to_ne_bytes());
            rec[19..19 + name.len()].copy_from_slice(name);
            buf.extend(rec);
        }
        assert_eq!(tids(&buf).collect::<Vec<_>>(), [12, 345678]);
        assert_eq!(tids(&buf[..30]).count(), 0); // a cut record ends the listing
        assert_eq!(parse_tid(b"99999999999"), None);
    }
}
