//! Calls one function of each library member, one of an optimized dependency, and a
//! proc-macro.
use std::time::Duration;

fn scaled() -> u64 {
    fastmath::scale(3)
}

fn main() {
    let mut frame = 0u64;
    loop {
        frame += 1;
        println!(
            "frame={frame} dyl={} cdy={} sta={} linux={} scaled={} macro={}",
            dyl::word(),
            cdy::word(),
            sta::word(),
            linuxonly::word(),
            scaled(),
            derive::word!()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
