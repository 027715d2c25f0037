//! A test app for live frames (HL1012) and pending entry jumps: loops that never return.
//!
//! `live_loops` spawns thread `worker-1`, whose own function `worker()` loops forever and
//! prints `worker v=VERSION label=LABEL` every 50 ms; `live_loops run` has `main` call
//! `run()`, which loops forever printing `run v=VERSION label=LABEL`. `label()` is called
//! on every turn, so an edit of it reaches both loops through its entry jump; an edit of a
//! loop's own body does not (the tests edit both). No safe point anywhere.
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

fn main() {
    if std::env::args().nth(1).as_deref() == Some("run") {
        run();
    }
    thread::Builder::new().name("worker-1".into()).spawn(worker).unwrap();
    loop {
        thread::sleep(Duration::from_secs(1));
    }
}
