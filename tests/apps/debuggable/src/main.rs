//! A test app for debugging patched code: a loop that calls `tick`, which calls `work`.
//! Tests make patched functions panic (caught here) and attach gdb to the live process.
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

static TICKS: AtomicU32 = AtomicU32::new(0);

#[inline(never)]
fn work(n: u32) -> u32 {
    n + 1
}

#[inline(never)]
fn tick(n: u32) -> u32 {
    work(n) * 2
}

fn main() {
    loop {
        let n = TICKS.fetch_add(1, Ordering::SeqCst);
        match std::panic::catch_unwind(|| tick(n)) {
            Ok(v) => println!("tick n={n} v={v}"),
            Err(_) => println!("caught n={n}"),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
