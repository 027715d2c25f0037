"""Entry-jump soak: many consecutive patches of a tiny function that 8 threads call in tight
bursts, while a 9th thread sits in a blocking read() on a pipe (the `stress` test app).

Each patch changes tiny()'s return value. Per patch it prints save -> patched (the edit
written to disk until the Session reports `patched`: rustc, diff, link, deliver, apply) and
the app's apply time (stopping the threads and writing the entry jumps included), then their
median and spread, and the same checks as tests/test_entry_jumps.py:
  * no crash: the app never exited, and it keeps printing;
  * no EINTR: read() on the pipe never returned Interrupted;
  * every one of the 8 threads ends on the newest version of tiny().
Exits 1 if a check fails.

Usage: python bench/entry_jumps_soak.py [--patches 200] [--no-entry-jumps]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from hotline.engine.session import Session
from hotline.examples import copy_app

THREADS = 8


class App:
    """The stress app under a Session: its stdout lines and its events, with waits."""

    def __init__(self, crate: Path, entry_jumps: bool) -> None:
        self.crate = crate
        self.lines: list[str] = []
        self.events: list[dict] = []
        self.cv = threading.Condition()
        self.session = Session(crate, self.on_event, entry_jumps=entry_jumps)

    def on_event(self, e: dict) -> None:
        with self.cv:
            self.events.append(e)
            if e["event"] == "app-output" and e["stream"] == "stdout":
                self.lines.append(e["line"])
            self.cv.notify_all()

    def wait_seen(self, values: str, timeout: float) -> str | None:
        """The first status line whose callers all last saw `values`, or None after `timeout`."""
        deadline = time.monotonic() + timeout
        with self.cv:
            while True:
                for line in self.lines:
                    if line.startswith("round=") and fields(line)["seen"] == values:
                        return line
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cv.wait(left)

    def edit(self, old: str, new: str) -> None:
        path = self.crate / "src" / "main.rs"
        text = path.read_text()
        assert old in text, old
        temp = path.with_suffix(".rs.saving")
        temp.write_text(text.replace(old, new, 1))
        temp.replace(path)  # atomically, as editors save


def fields(line: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in line.split() if "=" in part)


def spread(xs: list[float]) -> str:
    if not xs:
        return "none"
    q = statistics.quantiles(xs, n=10) if len(xs) >= 2 else [xs[0]] * 9
    return (
        f"median {statistics.median(xs):.1f}  min {min(xs):.1f}  p10 {q[0]:.1f}  p90 {q[-1]:.1f}  "
        f"max {max(xs):.1f}  stdev {statistics.pstdev(xs):.1f}"
    )


def soak(patches: int, entry_jumps: bool, root: Path) -> bool:
    app = App(copy_app("stress", root), entry_jumps)
    print("fat build and launch...", flush=True)
    app.session.start()
    try:
        if app.wait_seen(",".join(["1"] * THREADS), 60) is None:
            print("FAIL: the app never reported its threads", flush=True)
            return False
        save_ms: list[float] = []
        apply_ms: list[float] = []
        failed: list[str] = []
        for i in range(1, patches + 1):
            app.edit(f"fn tiny() -> u64 {{\n    {i}\n}}", f"fn tiny() -> u64 {{\n    {i + 1}\n}}")
            saved = time.perf_counter()
            outcome = app.session.patch()
            elapsed = (time.perf_counter() - saved) * 1000
            e = outcome.event
            if outcome.kind != "patched":
                failed.append(f"patch {i}: {outcome.kind} {e.get('rule', '')} {e.get('reason', '')}")
                print(f"patch {i:4d}: {outcome.kind} {e}", flush=True)
                continue
            save_ms.append(elapsed)
            apply_ms.append(e["phases"]["apply"])
            jumps = e.get("entry_jumps", {})
            warned = ",".join(w["rule"] for w in e.get("warnings", [])) or "-"
            print(
                f"patch {i:4d}: save -> patched {elapsed:7.1f} ms  apply {e['phases']['apply']:5.1f} ms  "
                f"jumps written {jumps.get('written', '-')} skipped {jumps.get('skipped', '-')}  warnings {warned}",
                flush=True,
            )
        newest = ",".join([str(patches + 1)] * THREADS)
        landed = app.wait_seen(newest, 5)
        mark = len(app.lines)
        time.sleep(0.5)
        alive = len(app.lines) > mark
        with app.cv:  # before stop(), whose SIGTERM ends the app on purpose
            exits = [e for e in app.events if e["event"] == "app-exited"]
    finally:
        app.session.stop()
    eintr = [line for line in app.lines if line.startswith(("EINTR", "read error", "pipe closed"))]
    last = next((line for line in reversed(app.lines) if line.startswith("round=")), "")
    print()
    print(f"save -> patched ms: {spread(save_ms)}")
    print(f"apply ms:           {spread(apply_ms)}")
    checks = {
        f"all {patches} patches applied": not failed,
        "no crash (the app never exited, and still prints after the last patch)": not exits and alive,
        "no EINTR from the blocked read()": not eintr,
        f"every one of the {THREADS} threads ends on the newest version ({patches + 1})": landed is not None,
    }
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    for problem in failed + [str(e) for e in exits] + eintr:
        print(f"      {problem}")
    if landed is None:
        print(f"      last status line: {last}")
    return all(checks.values())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--patches", type=int, default=200)
    parser.add_argument(
        "--no-entry-jumps", action="store_true", help="safe points only (the threads then stay on version 1)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hotline-soak-") as tmp:
        ok = soak(args.patches, not args.no_entry_jumps, Path(tmp))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
