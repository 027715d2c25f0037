use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

static TICKS: AtomicUsize = AtomicUsize::new(0);

struct World {
    frame: u64,
    names: Vec<String>,
}

fn greeting() -> &'static str {
    "hello"
}

fn tick(world: &mut World) {
    world.frame += 1;
    let n = TICKS.fetch_add(1, Ordering::SeqCst) + 1;
    println!("{} frame={} ticks={} names={}", greeting(), world.frame, n, world.names.len());
}

fn main() {
    let mut world = World { frame: 0, names: vec!["a".into()] };
    loop {
        hotline::call(|| tick(&mut world));
        std::thread::sleep(Duration::from_millis(100));
    }
}
