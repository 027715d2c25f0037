//! One of two binaries of one package: `hotline run --bin alpha` must run this one.
use std::time::Duration;

fn name() -> &'static str {
    "alpha"
}

fn main() {
    let mut frame = 0u64;
    loop {
        frame += 1;
        hotline::call(|| println!("{} frame={frame}", name()));
        std::thread::sleep(Duration::from_millis(50));
    }
}
