"""Save-to-patched latency on the bundled examples, by phase, against two baselines.

For the same sequence of edits, measured in the same run on three copies of each app:
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


def bench_hotline_run(crate: Path, edits: list[tuple[str, str]], args: list[str], target: Path) -> list[dict]:
    """`hotline run --json`: each edit, from the file written to the `patched` event read."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "hotline", "run", str(crate), "--json", "--", *args],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ | {"HOTLINE_TARGET_DIR": str(target)},
    )
    assert proc.stdout is not None

    def until(kind: str) -> tuple[dict, float]:
        for line in proc.stdout:
            event = json.loads(line)
            if event["event"] == kind:
                return event, time.perf_counter()
            if event["event"] in ("compile-error", "patch-refused", "build-finished") and not event.get(
                "ok", False
            ):
                raise SystemExit(f"bench: {event}")
        raise SystemExit("bench: hotline run exited")

    rows = []
    try:
        until("app-started")
        time.sleep(1.0)  # let the app and the watcher settle
        for old, new in edits:
            edit(crate, old, new)
            saved = time.perf_counter()
            _, started = until("patch-started")
            event, done = until("patched")
            rows.append(
                {
                    "watch": (started - saved) * 1000,
                    **event["phases"],
                    "save -> patched": (done - saved) * 1000,
                }
            )
            time.sleep(0.3)  # a user does not save twice within a patch
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return rows


def bench_bare_rustc(crate: Path, edits: list[tuple[str, str]], target: Path) -> list[float]:
    session = Session(crate, lambda e: None, target_dir=target)
    session.fat_build()
    out = []
    for i, (old, new) in enumerate(edits):
        edit(crate, old, new)
        scratch = session.target_dir / "bench-objects" / str(i)
        scratch.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        rc, _ = session.crates[-1].replay(scratch)
        out.append((time.perf_counter() - started) * 1000)
        if rc != 0:
            raise SystemExit("bench: bare rustc failed")
    return out


def bench_cargo_restart(
    crate: Path, edits: list[tuple[str, str]], name: str, args: list[str], target: Path
) -> list[float]:
    """Incremental `cargo build`, then the new app until it prints its first line."""
    env = os.environ | {"CARGO_TARGET_DIR": str(target)}
    subprocess.run(["cargo", "build", "-q"], cwd=crate, check=True, env=env)
    out = []
    for old, new in edits:
        edit(crate, old, new)
        started = time.perf_counter()
        subprocess.run(["cargo", "build", "-q"], cwd=crate, check=True, env=env)
        app = subprocess.Popen([str(target / "debug" / name), *args], stdout=subprocess.PIPE, text=True)
        assert app.stdout is not None
        app.stdout.readline()
        out.append((time.perf_counter() - started) * 1000)
        app.kill()
        app.wait()
    return out


def summary(xs: list[float]) -> dict[str, float]:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs)}


def bench_app(app: str, n: int, cache: Path, root: Path) -> dict:
    template, app_args = EDITS[app]
    texts = [template.format("")] + [template.format(f"-{i}") for i in range(1, n + 1)]
    edits = list(zip(texts, texts[1:], strict=False))
    hot = bench_hotline_run(copy_app(app, root / "hotline"), edits, app_args, cache / app / "hotline")
    bare = bench_bare_rustc(copy_app(app, root / "bare"), edits, cache / app / "hotline")
    cargo = bench_cargo_restart(copy_app(app, root / "cargo"), edits, app, app_args, cache / app / "cargo")
    # The first save also pays for warming caches: report it, keep it out of the medians.
    ms = {p: summary([r[p] for r in hot[1:]]) for p in PHASES}
    ms["bare rustc"] = summary(bare[1:])
    ms["cargo build + restart"] = summary(cargo[1:])
    total = ms["save -> patched"]["median"]
    return {
        "edits": n,
        "first save -> patched": hot[0]["save -> patched"],
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
    print(
        f"{'first save -> patched':<36}"
        + "".join(f"{results[a]['first save -> patched']:>24.1f}" for a in apps)
    )


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
