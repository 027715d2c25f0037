//! A binary declared with `[[bin]]` at a custom path.
use std::time::Duration;

fn word() -> &'static str {
    "custom-1"
}

fn main() {
    let mut frame = 0u64;
    loop {
        frame += 1;
        println!("frame={frame} custom={}", word());
        std::thread::sleep(Duration::from_millis(50));
    }
}
