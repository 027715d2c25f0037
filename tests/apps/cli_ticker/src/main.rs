//! The terminal tests' app (tests/test_cli_terminal.py): a static tick count that only a new
//! process starts over, and a line that says whether the `loud` feature was built in.
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

static TICKS: AtomicU64 = AtomicU64::new(0);

fn greeting() -> &'static str {
    "hello"
}

fn mode() -> &'static str {
    if cfg!(feature = "loud") {
        "loud"
    } else {
        "quiet"
    }
}

fn tick() {
    let n = TICKS.fetch_add(1, Ordering::Relaxed) + 1;
    println!("{} tick={n} mode={}", greeting(), mode());
}

fn main() {
    loop {
        tick();
        std::thread::sleep(Duration::from_millis(100));
    }
}
