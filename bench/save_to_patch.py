"""Save-to-patched latency on the bundled examples, by phase, against two baselines.

For the same sequence of edits, interleaved edit by edit on three copies of each app:
  * hotline: `hotline run --json` as a user runs it; each edit is written to disk and
    timed until the `patched` event, split into watch (file written -> patch started),
    rustc, diff, link (scope and relocation), deliver and apply;
  * bare rustc: the crate's captured rustc command alone, replayed after the same edit,
    the floor any patcher pays;
  * cargo + restart: incremental `cargo build`, then launching the app until it prints
    its first line, what a user does without hot reloading.

Usage: python bench/save_to_patch.py [--app counter web-service] [--edits 9]
           [--cache DIR] [--json bench/results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hotline.engine.session import Session
from hotline.examples import copy_app

# Per app: the text each edit replaces ({} is the edit number) and the app's arguments.
EDITS = {
    "counter": ('"hello{}"', []),
    "axum-server": ('format!("hello{}, {{name}}\\n")', ["127.0.0.1:0"]),
    "web-service": ('format!("hello{}, {{name}}\\n")', ["127.0.0.1:0"]),
}
PHASES = ["watch", "rustc", "diff", "link", "deliver", "apply", "save -> patched"]


def edit(crate: Path, old: str, new: str) -> None:
    path = crate / "src" / "main.rs"
    temp = path.with_suffix(".rs.saving")
    temp.write_text(path.read_text().replace(old, new, 1))
    temp.replace(path)  # atomically, as editors save


class HotlineRun:
    """`hotline run --json`: each edit, from the file written to the `patched` event read."""

    def __init__(self, crate: Path, args: list[str], target: Path) -> None:
        self.crate = crate
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hotline", "run", str(crate), "--json", "--", *args],
            stdout=subprocess.PIPE,
            text=True,
            env=os.environ | {"HOTLINE_TARGET_DIR": str(target)},
        )
        self.until("app-started")
        time.sleep(1.0)  # let the app and the watcher settle

    def until(self, kind: str) -> tuple[dict, float]:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            event = json.loads(line)
            if event["event"] == kind:
                return event, time.perf_counter()
            failed = event["event"] in ("compile-error", "patch-refused", "build-finished")
            if failed and not event.get("ok", False):
                raise SystemExit(f"bench: {event}")
        raise SystemExit("bench: hotline run exited")

    def measure(self, old: str, new: str) -> dict:
        edit(self.crate, old, new)
        saved = time.perf_counter()
        _, started = self.until("patch-started")
        event, done = self.until("patched")
        return {
            "watch": (started - saved) * 1000,
            **event["phases"],
            "save -> patched": (done - saved) * 1000,
        }

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


class BareRustc:
    """The crate's captured rustc command alone, replayed after the edit."""

    def __init__(self, crate: Path, target: Path) -> None:
        self.crate, self.session = crate, Session(crate, lambda e: None, target_dir=target)
        self.session.fat_build()
        self.count = 0

    def measure(self, old: str, new: str) -> float:
        edit(self.crate, old, new)
        self.count += 1
        scratch = self.session.target_dir / "bench-objects" / str(self.count)
        scratch.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        rc, _ = self.session.crates[-1].replay(scratch)
        if rc != 0:
            raise SystemExit("bench: bare rustc failed")
        return (time.perf_counter() - started) * 1000


class CargoRestart:
    """Incremental `cargo build`, then the new app until it prints its first line."""

    def __init__(self, crate: Path, name: str, args: list[str], target: Path) -> None:
        self.crate, self.name, self.args, self.target = crate, name, args, target
        self.env = os.environ | {"CARGO_TARGET_DIR": str(target)}
        subprocess.run(["cargo", "build", "-q"], cwd=crate, check=True, env=self.env)

    def measure(self, old: str, new: str) -> float:
        edit(self.crate, old, new)
        started = time.perf_counter()
        subprocess.run(["cargo", "build", "-q"], cwd=self.crate, check=True, env=self.env)
        app = subprocess.Popen(
            [str(self.target / "debug" / self.name), *self.args], stdout=subprocess.PIPE, text=True
        )
        assert app.stdout is not None
        app.stdout.readline()
        elapsed = (time.perf_counter() - started) * 1000
        app.kill()
        app.wait()
        return elapsed


def summary(xs: list[float]) -> dict[str, float]:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs)}


def bench_app(app: str, n: int, cache: Path, root: Path) -> dict:
    """The three measurements interleaved edit by edit, so drift in the machine's speed
    during the run weighs on all of them alike."""
    template, app_args = EDITS[app]
    # Each edit makes the literal one character longer, as typing does. (Same-length edits
    # are cheaper for rustc: nothing after them in the file moves.)
    texts = [template.format("-" * i) for i in range(n + 1)]
    hot_run = HotlineRun(copy_app(app, root / "hotline"), app_args, cache / app / "hotline")
    try:
        bare_run = BareRustc(copy_app(app, root / "bare"), cache / app / "bare")
        cargo_run = CargoRestart(copy_app(app, root / "cargo"), app, app_args, cache / app / "cargo")
        hot, bare, cargo = [], [], []
        for old, new in zip(texts, texts[1:], strict=False):
            hot.append(hot_run.measure(old, new))
            time.sleep(0.3)  # the app applies the patch; a user does not save twice that fast
            bare.append(bare_run.measure(old, new))
            cargo.append(cargo_run.measure(old, new))
    finally:
        hot_run.close()
    # The first save also pays for warming caches: report it, keep it out of the medians.
    ms = {p: summary([r[p] for r in hot[1:]]) for p in PHASES}
    ms["bare rustc"] = summary(bare[1:])
    ms["cargo build + restart"] = summary(cargo[1:])
    total = ms["save -> patched"]["median"]
    return {
        "edits": n,
        "first save -> patched": hot[0]["save -> patched"],
        "first bare rustc": bare[0],
        "ms": ms,
        "ratios": {
            "hotline / bare rustc": total / ms["bare rustc"]["median"],
            "cargo build + restart / hotline": ms["cargo build + restart"]["median"] / total,
            "overhead ms (hotline - bare rustc)": total - ms["bare rustc"]["median"],
        },
    }


def print_table(results: dict[str, dict], machine: str) -> None:
    apps = list(results)
    print(f"save -> patched, median ms (min-max) of each app's edits after the first; {machine}")
    print(f"{'':<36}" + "".join(f"{a:>24}" for a in apps))
    for row in [*PHASES, "bare rustc", "cargo build + restart"]:
        cells = []
        for a in apps:
            s = results[a]["ms"][row]
            cells.append(f"{s['median']:.1f} ({s['min']:.0f}-{s['max']:.0f})")
        print(f"{row:<36}" + "".join(f"{c:>24}" for c in cells))
    for ratio in next(iter(results.values()))["ratios"]:
        print(f"{ratio:<36}" + "".join(f"{results[a]['ratios'][ratio]:>24.2f}" for a in apps))
    for first in ("first save -> patched", "first bare rustc"):
        print(f"{first:<36}" + "".join(f"{results[a][first]:>24.1f}" for a in apps))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--app", nargs="+", default=list(EDITS), choices=sorted(EDITS))
    parser.add_argument("--edits", type=int, default=9, help="edits per app (the first is a warm-up)")
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path.home() / ".cache" / "hotline-bench",
        help="build directories kept between runs (dependencies are compiled once)",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    machine = (
        f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}, "
        f"python {platform.python_version()}, {subprocess.run(['rustc', '-V'], capture_output=True, text=True).stdout.strip()}"
    )
    results = {}
    for app in args.app:
        with tempfile.TemporaryDirectory(prefix="hotline-bench-") as tmp:
            results[app] = bench_app(app, args.edits, args.cache, Path(tmp))
    print_table(results, machine)
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "apps": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
