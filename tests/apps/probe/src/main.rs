//! A test app: every frame prints the state a patch must keep and the code a patch changes.
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

static HITS: AtomicUsize = AtomicUsize::new(0);
static LIMIT: AtomicUsize = AtomicUsize::new(3);

#[derive(Debug)]
struct Player {
    name: String,
    hp: u32,
}

impl Player {
    fn describe(&self) -> String {
        format!("{}:{}", self.name, self.hp)
    }
}

static PLAYERS: Mutex<Vec<Player>> = Mutex::new(Vec::new());

/// Lives only inside one frame: no value of it survives a safe point.
struct Stats {
    frames: u64,
}

thread_local! {
    static LOCAL: Cell<u64> = const { Cell::new(0) };
}

fn version() -> u32 {
    1
}

fn extra() -> String {
    String::new()
}

fn step(frame: &mut u64) {
    *frame += 1;
    let hits = HITS.fetch_add(1, Ordering::SeqCst) + 1;
    let tls = LOCAL.with(|c| {
        c.set(c.get() + 1);
        c.get()
    });
    let scale = |x: u32| x + version();
    let mut players = PLAYERS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if players.is_empty() {
        players.push(Player { name: "ann".into(), hp: 10 });
    }
    let roster: Vec<String> = players.iter().map(Player::describe).collect();
    let stats = Stats { frames: *frame };
    println!(
        "v={} c={} hits={} addr={:#x} tls={} frame={} extra={} players={} limit={} stats={}",
        version(),
        scale(0),
        hits,
        &HITS as *const AtomicUsize as usize,
        tls,
        frame,
        extra(),
        roster.join(","),
        LIMIT.load(Ordering::SeqCst),
        stats.frames
    );
}

fn main() {
    hotline::on_patch(|| println!("on_patch ran"));
    let mut frame = 0;
    loop {
        let run = std::panic::AssertUnwindSafe(|| hotline::call(|| step(&mut frame)));
        if let Err(e) = std::panic::catch_unwind(run) {
            let msg = e.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| e.downcast_ref::<String>().cloned());
            println!("caught panic: {}", msg.unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(40));
    }
}
