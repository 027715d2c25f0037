//! A test app for live frames (HL1012) and pending entry jumps: loops that never return.
//!
//! `live_loops` spawns thread `worker-1`, whose own `worker()` loops forever printing `worker
//! v=VERSION label=LABEL` every 50 ms; `live_loops run` has `main` call `run()`, which loops
//! forever printing `run v=VERSION label=LABEL` (`frames`/`slow`: `frame()` in loops). An
//! edit of `label()`, called on every turn, reaches both loops through its entry jump; an
//! edit of a loop's own body does not (the tests edit both). No safe point anywhere.
use std::thread;
use std::time::Duration;

#[inline(never)]
fn label() -> u64 {
    std::hint::black_box(1)
}

fn worker() {
    loop {
        let pause = 50;
        println!("worker v=1 label={}", label());
        thread::sleep(Duration::from_millis(pause));
    }
}

fn run() {
    loop {
        println!("run v=1 label={}", label());
        thread::sleep(Duration::from_millis(50));
    }
}

/// One turn of `frames()`: nearly all its time is spent waiting in the sleep it calls, so a
/// patch's stop finds the thread inside it; it returns, and its next call runs the new code.
#[inline(never)]
fn frame(pause_ms: u64) {
    println!("frame v=1 pause={pause_ms}");
    second_worker(false);
    thread::sleep(Duration::from_millis(pause_ms));
}

/// Starts thread `worker-2` once, when `start`: a test's edit turns it on, so that an
/// edited `worker`'s new copy runs there while worker-1 loops in its old one.
fn second_worker(start: bool) {
    static STARTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if start && !STARTED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        thread::Builder::new().name("worker-2".into()).spawn(worker).unwrap();
    }
}

fn frames(pause_ms: u64) {
    loop {
        frame(pause_ms);
    }
}

fn main() {
    let mode = std::env::args().nth(1);
    if mode.as_deref() == Some("run") {
        run();
    }
    thread::Builder::new().name("worker-1".into()).spawn(worker).unwrap();
    if mode.as_deref() == Some("slow") {
        // a second thread whose turns wait 4 s: it leaves the old `frame` long after `main`
        thread::Builder::new().name("slow-1".into()).spawn(|| frames(4000)).unwrap();
    }
    if matches!(mode.as_deref(), Some("frames" | "slow")) {
        frames(300);
    }
    loop {
        thread::sleep(Duration::from_secs(1));
    }
}
