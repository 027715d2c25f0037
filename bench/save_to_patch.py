"""Save-to-patched latency on a bundled example, by phase, against two baselines.

For the same sequence of edits, measured in the same run on three copies of the app:
  * hotline: `Session.patch()` on the live process (rustc · diff · link · deliver · apply);
  * bare rustc: the crate's captured rustc command alone, replayed after the same edit,
    the floor any patcher pays;
  * cargo + restart: incremental `cargo build`, then launching the app until it prints
    the edited line, what a user does without hot reloading.

Usage: python bench/save_to_patch.py [--app counter] [--edits 7] [--json bench/results.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
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


def edit(crate: Path, old: str, new: str) -> None:
    path = crate / "src" / "main.rs"
    path.write_text(path.read_text().replace(old, new, 1))


def median_spread(xs: list[float]) -> tuple[float, float, float]:
    return statistics.median(xs), min(xs), max(xs)


def bench_hotline(
    crate: Path, edits: list[tuple[str, str]], args: list[str], target: Path | None
) -> list[dict]:
    session = Session(crate, lambda e: None, app_args=args, target_dir=target)
    session.start()
    rows = []
    try:
        time.sleep(0.5)
        for old, new in edits:
            edit(crate, old, new)
            outcome = session.patch()
            if outcome.kind != "patched":
                raise SystemExit(f"bench: patch failed: {outcome.event}")
            rows.append({"total": outcome.event["ms"], **outcome.event["phases"]})
    finally:
        session.stop()
    return rows


def bench_bare_rustc(crate: Path, edits: list[tuple[str, str]], target: Path | None) -> list[float]:
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


def bench_cargo_restart(crate: Path, edits: list[tuple[str, str]], name: str, args: list[str]) -> list[float]:
    """Incremental `cargo build`, then the new app until it prints its first line."""
    subprocess.run(["cargo", "build", "-q"], cwd=crate, check=True)
    out = []
    for old, new in edits:
        edit(crate, old, new)
        started = time.perf_counter()
        subprocess.run(["cargo", "build", "-q"], cwd=crate, check=True)
        app = subprocess.Popen(
            [str(crate / "target" / "debug" / name), *args], stdout=subprocess.PIPE, text=True
        )
        assert app.stdout is not None
        app.stdout.readline()
        out.append((time.perf_counter() - started) * 1000)
        app.kill()
        app.wait()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--app", default="counter", choices=sorted(EDITS))
    parser.add_argument("--target-dir", type=Path, help="reuse this fat-build target directory (a cache)")
    parser.add_argument("--edits", type=int, default=7)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    template, app_args = EDITS[args.app]
    texts = [template.format("")] + [template.format(f"-{i}") for i in range(1, args.edits + 1)]
    edits = list(zip(texts, texts[1:], strict=False))
    with tempfile.TemporaryDirectory(prefix="hotline-bench-") as tmp:
        root = Path(tmp)
        hot = bench_hotline(copy_app(args.app, root / "hotline"), edits, app_args, args.target_dir)
        bare = bench_bare_rustc(copy_app(args.app, root / "bare"), edits, args.target_dir)
        cargo = bench_cargo_restart(copy_app(args.app, root / "cargo"), edits, args.app, app_args)

    phases = ["rustc", "diff", "link", "deliver", "apply", "total"]
    table = {p: median_spread([r[p] for r in hot]) for p in phases}
    table["bare rustc"] = median_spread(bare)
    table["cargo build + restart"] = median_spread(cargo)
    total = table["total"][0]
    ratios = {
        "hotline / bare rustc": total / table["bare rustc"][0],
        "cargo build + restart / hotline": table["cargo build + restart"][0] / total,
    }
    machine = f"{platform.machine()}, {platform.processor() or platform.system()}, python {platform.python_version()}"
    print(f"save -> patched on {args.app}, {args.edits} edits ({machine})")
    print(f"{'phase':<24}{'median ms':>10}{'min':>9}{'max':>9}")
    for name, (med, lo, hi) in table.items():
        print(f"{name:<24}{med:>10.1f}{lo:>9.1f}{hi:>9.1f}")
    for name, value in ratios.items():
        print(f"{name:<34}{value:>6.2f}x")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"app": args.app, "edits": args.edits, "machine": machine, "ms": table, "ratios": ratios},
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
