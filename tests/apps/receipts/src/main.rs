//! A test app for receipts: `settings` runs once at start-up (an init function), `step`
//! runs in the main loop every 50 ms. No safe point: entry jumps redirect both.
use std::time::Duration;

fn settings() -> u64 {
    println!("settings loaded");
    7
}

fn step(n: u64) -> u64 {
    n + 1
}

fn main() {
    let base = settings();
    let mut n = 0;
    loop {
        n = step(n);
        println!("tick n={n} base={base} patches={}", hotline::patches_applied());
        std::thread::sleep(Duration::from_millis(50));
    }
}
