//! A std-only app that knows nothing of Hotline, and a child process it spawns.

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

static TICKS: AtomicU64 = AtomicU64::new(0);

fn greeting() -> String {
    "hello".to_string()
}

fn tick() {
    let n = TICKS.fetch_add(1, Ordering::Relaxed) + 1;
    println!("tick={n} greeting={}", greeting());
}

/// What a child process inherits: its environment and whether the runtime is mapped in it.
fn show_child() {
    let script = "env; echo mapped=$(grep -c hotline /proc/$$/maps)";
    let out = Command::new("/bin/sh")
        .args(["-c", script])
        .output()
        .expect("run /bin/sh");
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        println!("child: {line}");
    }
    println!("child done");
}

fn main() {
    show_child();
    loop {
        tick();
        std::thread::sleep(Duration::from_millis(50));
    }
}
