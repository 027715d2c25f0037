"""What a receipt's first-call preamble (server/hotline/engine/link/first_call_stubs.py) costs a
call, once its flag is set: a tight loop calling a tiny patched function on several
threads, with and without the preamble, paired in one run (issue 25 allows 1 %).

The app below is patched once through a real Session (opt-level 3, as the fastest calls
are the worst case). It then finds its patched copy from the entry jump at `tiny`'s old
entry, checks that the copy starts with the preamble (`cmp byte [rip+flag], 0`), and
calls the same copy through a function pointer either at the preamble (`with`) or at the
body right after it (`without`). Everything else is equal: the code, the indirect call,
the loop. Calls in the app go through the old entry's jump too, which this leaves out,
so the relative cost measured here is an upper bound. Each pair runs both arms in a
random order, all threads in the same arm at once (a barrier between blocks), timed by
each thread's CPU clock so that time slices given to other processes do not count.

Usage: python bench/receipts_cost.py [--threads 4] [--pairs 40] [--iters 20000000] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
import queue
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from hotline import RUNTIME_DIR
from hotline.engine.session import Session

CARGO_TOML = f"""[package]
name = "receipts-bench"
version = "0.1.0"
edition = "2021"

[dependencies]
hotline = {{ package = "hotline-runtime", path = "{RUNTIME_DIR}" }}

[profile.dev]
opt-level = 3
"""

MAIN_RS = r"""
use std::hint::black_box;
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

#[inline(never)]
fn tiny(x: u64) -> u64 {
    x.wrapping_mul(3) ^ 1
}

/// The patched copy the jump at `tiny`'s old entry leads to: (its preamble, its body).
fn patched_copy() -> Option<(usize, usize)> {
    let at = black_box(tiny as fn(u64) -> u64) as usize;
    // SAFETY: reads the first bytes of this program's own code (mapped r-x).
    let entry = unsafe { std::slice::from_raw_parts(at as *const u8, 5) };
    if entry[0] != 0xe9 {
        return None;
    }
    let target = at as i64 + 5 + i64::from(i32::from_le_bytes(entry[1..5].try_into().unwrap()));
    // SAFETY: the jump's target is the patch's code (mapped r-x).
    let copy = unsafe { std::slice::from_raw_parts(target as *const u8, 2) };
    (copy == [0x80, 0x3d]).then_some((target as usize, target as usize + 13))
}

#[repr(C)]
struct Timespec {
    sec: i64,
    nsec: i64,
}

extern "C" {
    fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
}

/// This thread's CPU time in ns.
fn cpu_ns() -> u64 {
    let mut ts = Timespec { sec: 0, nsec: 0 };
    // SAFETY: CLOCK_THREAD_CPUTIME_ID (3) into a valid timespec.
    unsafe { clock_gettime(3, &mut ts) };
    ts.sec as u64 * 1_000_000_000 + ts.nsec as u64
}

fn calls(f: fn(u64) -> u64, iters: u64) -> u64 {
    let f = black_box(f);
    let mut acc = 0u64;
    for i in 0..iters {
        acc = acc.wrapping_add(f(i));
    }
    acc
}

fn main() {
    let args: Vec<u64> = std::env::args().skip(1).map(|a| a.parse().unwrap()).collect();
    let (threads, pairs, iters) = (args[0] as usize, args[1] as usize, args[2]);
    println!("ready");
    let (entry, body) = loop {
        if let Some(copy) = patched_copy() {
            break copy;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    // SAFETY: both are the patched copy of `tiny` (fn(u64) -> u64): at its preamble, which
    // falls through to the body, and at the body itself.
    let arms: [fn(u64) -> u64; 2] = unsafe {
        [std::mem::transmute::<usize, fn(u64) -> u64>(entry), std::mem::transmute::<usize, fn(u64) -> u64>(body)]
    };
    println!("patched entry={entry:#x} body={body:#x} check={}", calls(arms[0], 3));
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let orders: Vec<usize> = (0..pairs)
        .map(|_| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng & 1) as usize
        })
        .collect();
    let barrier = Arc::new(Barrier::new(threads));
    let times = Arc::new(Mutex::new(vec![[0u64; 2]; pairs]));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (barrier, times, orders) = (barrier.clone(), times.clone(), orders.clone());
            std::thread::spawn(move || {
                calls(arms[0], iters / 10); // warm up
                for (pair, first) in orders.iter().enumerate() {
                    for arm in [*first, 1 - *first] {
                        barrier.wait();
                        let t0 = cpu_ns();
                        black_box(calls(arms[arm], iters));
                        let spent = cpu_ns() - t0;
                        times.lock().unwrap()[pair][arm] += spent;
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    for (pair, [with, without]) in times.lock().unwrap().iter().enumerate() {
        let per_call = |ns: u64| ns as f64 / (iters * threads as u64) as f64;
        println!("pair={pair} first={} with_ns={:.4} without_ns={:.4}", ["with", "without"][orders[pair]], per_call(*with), per_call(*without));
    }
    println!("done");
}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--pairs", type=int, default=40)
    parser.add_argument("--iters", type=int, default=20_000_000, help="calls per thread per block")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("receipts_cost.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hotline-receipts-bench-") as tmp:
        crate = Path(tmp) / "receipts-bench"
        (crate / "src").mkdir(parents=True)
        (crate / "Cargo.toml").write_text(CARGO_TOML)
        main_rs = crate / "src" / "main.rs"
        main_rs.write_text(MAIN_RS)
        lines: queue.Queue[str] = queue.Queue()

        def on_event(e: dict) -> None:
            if e["event"] == "app-output" and e["stream"] == "stdout":
                lines.put(e["line"])
            elif e["event"] in ("engine-error", "app-exited"):
                lines.put(f"!{e}")

        session = Session(crate, on_event, app_args=[str(args.threads), str(args.pairs), str(args.iters)])
        session.start()
        try:
            expect(lines, "ready", 600)
            main_rs.write_text(MAIN_RS.replace("^ 1\n", "^ 2\n"))
            outcome = session.patch()
            if outcome.kind != "patched":
                raise SystemExit(f"bench: {outcome.kind}: {outcome.event}")
            print(expect(lines, "patched entry=", 30))
            started = time.time()
            pairs = []
            while not (line := expect(lines, "", 3600)).startswith("done"):
                if line.startswith("pair="):
                    f = dict(part.split("=", 1) for part in line.split())
                    pairs.append((float(f["with_ns"]), float(f["without_ns"]), f["first"]))
        finally:
            session.stop()
    report(args, pairs, time.time() - started)


def expect(lines: queue.Queue[str], prefix: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        if line.startswith("!"):
            raise SystemExit(f"bench: {line[1:]}")
        if line.startswith(prefix):
            return line


def report(args: argparse.Namespace, pairs: list[tuple[float, float, str]], seconds: float) -> None:
    ratios = sorted(w / wo - 1 for w, wo, _ in pairs)
    n = len(ratios)
    # a distribution-free 95 % interval of the median: order statistics n/2 -+ 0.98 sqrt(n)
    lo, hi = ratios[max(0, int(n / 2 - 0.98 * n**0.5))], ratios[min(n - 1, int(n / 2 + 0.98 * n**0.5))]
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {cpu_model()}",
        "threads": args.threads,
        "calls per thread per block": args.iters,
        "pairs": n,
        "duration s": round(seconds, 1),
        "with ns per call (median)": round(statistics.median(w for w, _, _ in pairs), 4),
        "without ns per call (median)": round(statistics.median(wo for _, wo, _ in pairs), 4),
        "overhead % (median of paired ratios)": round(100 * statistics.median(ratios), 2),
        "overhead % 95 % interval": [round(100 * lo, 2), round(100 * hi, 2)],
        "samples": [{"with_ns": w, "without_ns": wo, "first": first} for w, wo, first in pairs],
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    summary = {k: v for k, v in result.items() if k != "samples"}
    print(json.dumps(summary, indent=2))


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return subprocess.run(["uname", "-m"], capture_output=True, text=True).stdout.strip()


if __name__ == "__main__":
    main()
