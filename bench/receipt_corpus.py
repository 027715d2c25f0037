"""The receipt corpus, full run (issue 25): generated programs at opt-levels 0 to 3, with
rayon and tokio, many random edits each (tests/receipt_corpus.py says what is generated and
how each edit is judged). Prints each edit's outcome and the count of each: `new`, `named`,
`silent`, `crash`, `wrong`, `false-not-run`, in all, per site and per opt-level, and writes
them with every edit to bench/receipt_corpus.json (rewritten after each program, so a run
cut short keeps what it did). Exits 1 on any silent receipt, crash, wrong value or false
not-run.

The programs of one opt-level are built one after another in the same folder
(`cached_folder`), so rayon and tokio are built once per opt-level.

Usage: python bench/receipt_corpus.py [--seeds 2] [--edits 26] [--no-deps] [--out FILE]
"""

from __future__ import annotations

import argparse
import collections
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
from receipt_corpus import DEPS_SITES, SITES, Outcome, cached_folder, run_app  # noqa: E402

RESULTS = ("new", "named", "silent", "crash", "wrong", "false-not-run")


def counted(outcomes: list[Outcome], key: str) -> dict[str, dict[str, int]]:
    out: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for o in outcomes:
        out[str(getattr(o, key))][o.result] += 1
    return {k: {r: c[r] for r in RESULTS if c[r]} for k, c in sorted(out.items())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=2, help="programs per opt-level")
    parser.add_argument("--edits", type=int, default=26, help="edits per program")
    parser.add_argument("--no-deps", action="store_true", help="std-only programs (no rayon, tokio)")
    parser.add_argument("--out", type=Path, default=HERE / "receipt_corpus.json")
    args = parser.parse_args()
    deps = not args.no_deps
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True
    ).stdout.strip()
    outcomes: list[Outcome] = []
    programs: list[dict] = []
    started = time.monotonic()

    def write() -> None:
        counts = collections.Counter(o.result for o in outcomes)
        result = {
            "machine": f"{platform.machine()}, {cpu_model()}, {len(list(Path('/sys/devices/system/cpu').glob('cpu[0-9]*')))} cpus",
            "commit": commit,
            "sites": SITES + (DEPS_SITES if deps else []),
            "seeds": args.seeds,
            "edits per program": args.edits,
            "wall s": round(time.monotonic() - started, 1),
            "edits": len(outcomes),
            "counts": {r: counts[r] for r in RESULTS},
            "per site": counted(outcomes, "site"),
            "per opt-level": counted(outcomes, "opt"),
            "programs": programs,
            "outcomes": [
                {"opt": o.opt, "site": o.site, "gen": o.gen, "result": o.result, "detail": o.detail}
                for o in outcomes
            ],
        }
        args.out.write_text(json.dumps(result, indent=1) + "\n")

    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            for opt in range(4):
                folder = cached_folder(opt) if deps else Path(tmp) / f"r-{opt}-{seed}"
                began = time.monotonic()
                done = run_app(folder, opt, 100 * seed + opt, args.edits, deps=deps)
                programs.append({"opt": opt, "seed": 100 * seed + opt, "edits": len(done),
                                 "wall s": round(time.monotonic() - began, 1)})  # fmt: skip
                for o in done:
                    print(f"opt={o.opt} {o.site:7} gen={o.gen:2} {o.result:6} {o.detail[:150]}", flush=True)
                outcomes.extend(done)
                write()
    counts = collections.Counter(o.result for o in outcomes)
    print(f"\n{len(outcomes)} edits in {time.monotonic() - started:.0f} s")
    for title, table in (("site", counted(outcomes, "site")), ("opt-level", counted(outcomes, "opt"))):
        print(f"per {title}:")
        for k, c in table.items():
            print(f"  {k:8} " + " ".join(f"{r}={n}" for r, n in c.items()))
    print("total: " + " ".join(f"{r}={counts[r]}" for r in RESULTS))
    return 1 if any(counts[r] for r in ("silent", "crash", "wrong", "false-not-run")) else 0


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


if __name__ == "__main__":
    sys.exit(main())
