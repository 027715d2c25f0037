//! A test app for entry jumps: it never passes a safe point. Old code reaches every patched
//! function through the jump written at its old entry: a trait object and a fn pointer made
//! at start-up, threads looping in frames that never return. Each printer writes one line per
//! 50 ms; `patches=` is read before the line's calls, so a line with `patches=1` shows calls
//! made after the first patch was applied.
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const PERIOD: Duration = Duration::from_millis(50);

static HITS: AtomicU64 = AtomicU64::new(0);

/// A plain fn pointer, stored once at start-up.
static CALLBACK: OnceLock<fn() -> u32> = OnceLock::new();

thread_local! {
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

trait Shape {
    fn describe(&self) -> String;
}

struct Square {
    side: u32,
}

impl Shape for Square {
    fn describe(&self) -> String {
        format!("square-{}", self.side)
    }
}

fn on_tick() -> u32 {
    100
}

fn work(round: u64) -> u64 {
    round * 10 + 1
}

/// Its own loop calls `work` directly: the thread never passes a safe point.
fn worker() {
    let mut round = 0;
    loop {
        round += 1;
        let patches = hotline::patches_applied();
        println!("worker round={round} patches={patches} work={}", work(round));
        std::thread::sleep(PERIOD);
    }
}

#[inline(never)]
fn scale(x: u32) -> u32 {
    x * 3
}

#[inline(never)]
fn measure(round: u32) -> u64 {
    scale(round) as u64
}

/// Never returns: this frame, compiled before any patch, lives through every patch.
fn long_frame() {
    let mut round: u32 = 0;
    loop {
        round += 1;
        let patches = hotline::patches_applied();
        let direct = scale(round);
        let via = measure(round);
        println!("long round={round} patches={patches} direct={direct} via={via}");
        std::thread::sleep(PERIOD);
    }
}

/// The loop head (`2:`) is at byte 2 of the function, inside the 5 bytes an entry jump
/// would overwrite.
#[unsafe(naked)]
extern "C" fn spin(n: u64) -> u64 {
    core::arch::naked_asm!("xor eax, eax", "2:", "inc rax", "cmp rax, rdi", "jb 2b", "ret")
}

/// Calls `spin` back to back: the thread is almost always inside its loop.
fn spinner() {
    let mut calls: u64 = 0;
    let mut printed = Instant::now();
    loop {
        let patches = hotline::patches_applied();
        let r = spin(200_000);
        calls += 1;
        if printed.elapsed() >= PERIOD {
            println!("spin calls={calls} patches={patches} r={r}");
            printed = Instant::now();
        }
    }
}

fn frame(n: u64, shape: &dyn Shape) {
    let patches = hotline::patches_applied();
    let hits = HITS.fetch_add(1, Ordering::SeqCst) + 1;
    let (tls, tls_addr) = COUNT.with(|c| {
        c.set(c.get() + 1);
        (c.get(), c as *const Cell<u64> as usize)
    });
    let callback = CALLBACK.get().expect("stored at start-up");
    println!(
        "tick n={n} patches={patches} shape={} cb={} hits={hits} hits_addr={:#x} tls={tls} tls_addr={tls_addr:#x} mark=a",
        shape.describe(),
        callback(),
        &HITS as *const AtomicU64 as usize,
    );
}

fn main() {
    let shape: Box<dyn Shape> = Box::new(Square { side: 4 });
    CALLBACK.set(on_tick).expect("set once");
    std::thread::spawn(worker);
    std::thread::spawn(long_frame);
    if std::env::args().any(|a| a == "spin") {
        std::thread::spawn(spinner);
    }
    let mut n = 0;
    loop {
        n += 1;
        frame(n, &*shape);
        std::thread::sleep(PERIOD);
    }
}
