use std::time::Duration;

fn main() {
    loop {
        hotline::call(|| println!("{} wrapped={} stamp={}", engine::label(), engine::wrap(7), stamp::stamp!()));
        std::thread::sleep(Duration::from_millis(40));
    }
}
