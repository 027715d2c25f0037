use std::time::Duration;

fn main() {
    loop {
        hotline::call(|| println!("{} wrapped={}", engine::label(), engine::wrap(7)));
        std::thread::sleep(Duration::from_millis(40));
    }
}
