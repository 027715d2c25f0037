//! A stress app for entry jumps: 8 threads call `tiny` in bursts (a short sleep between
//! bursts leaves rustc a core), each recording the value it last saw; a 9th thread sits in a
//! blocking `read()` on a pipe and reports if it ever returns `Interrupted` (EINTR). The main
//! thread writes to the pipe now and then and prints every caller's last value each ~100 ms.
use std::io::{ErrorKind, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const CALLERS: usize = 8;
const BURST: u32 = 20_000;

static SEEN: [AtomicU64; CALLERS] = [const { AtomicU64::new(0) }; CALLERS];
static READ_BYTES: AtomicU64 = AtomicU64::new(0);

#[inline(never)]
fn tiny() -> u64 {
    1
}

fn caller(slot: usize) {
    loop {
        let mut last = 0;
        for _ in 0..BURST {
            last = tiny();
        }
        SEEN[slot].store(last, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn reader(mut pipe: std::io::PipeReader) {
    let mut buf = [0u8; 64];
    loop {
        match pipe.read(&mut buf) {
            Ok(0) => {
                println!("pipe closed");
                return;
            }
            Ok(n) => {
                READ_BYTES.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => println!("EINTR: read() was interrupted"),
            Err(e) => println!("read error: {e}"),
        }
    }
}

fn main() {
    let (pipe_reader, mut pipe_writer) = std::io::pipe().expect("pipe");
    for slot in 0..CALLERS {
        std::thread::spawn(move || caller(slot));
    }
    std::thread::spawn(move || reader(pipe_reader));
    let mut round: u64 = 0;
    loop {
        round += 1;
        if round % 5 == 0 {
            pipe_writer.write_all(b"x").expect("write to the pipe");
        }
        let seen: Vec<String> = SEEN.iter().map(|s| s.load(Ordering::Relaxed).to_string()).collect();
        println!(
            "round={round} patches={} seen={} read={}",
            hotline::patches_applied(),
            seen.join(","),
            READ_BYTES.load(Ordering::Relaxed)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
