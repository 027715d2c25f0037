"""Save -> patched of this checkout's engine against another checkout's, paired per edit.

A restructure must not make saves slower. Both engines run `hotline run --json` on their own
copy of a bundled app; each edit is written to both copies, in an order drawn afresh per
edit, and the clock reads save -> patched and its phases as `bench/save_to_patch.py` does.
The other checkout runs through PYTHONPATH, which comes before the editable install.

Usage: python bench/engine_compare.py --before /path/to/old/checkout [--app counter] [--edits 21]
           [--json bench/engine_compare.json]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

from save_to_patch import APPS, SETTLE_S, HotlineRun, app_copy, paired, run_metadata, summary

ROWS = ["watch", "rustc", "diff", "link", "deliver", "apply", "save -> patched"]


def compare(app: str, before: Path, n: int, cache: Path, root: Path, seed: int) -> dict:
    spec = APPS[app]
    runs = {
        "after": HotlineRun(app_copy(app, root / "after"), spec, cache / app / "after"),
        "before": HotlineRun(
            app_copy(app, root / "before"),
            spec,
            cache / app / "before",
            env={"PYTHONPATH": str(before / "server")},
        ),
    }
    try:
        samples = []
        shuffle = random.Random(f"{seed}:{app}")
        for k in range(n):
            order = shuffle.sample(sorted(runs), 2)
            sample: dict = {"order": order}
            for arm in order:
                sample[arm] = runs[arm].measure(k + 1)
                time.sleep(SETTLE_S)
            samples.append(sample)
            print(f"{app} edit {k + 1}/{n}: " + json.dumps(sample), file=sys.stderr, flush=True)
    finally:
        for run in runs.values():
            run.close()
    measured = samples[1:]  # the first save also warms the caches
    stats = {
        arm: {row: summary([s[arm][row] for s in measured]) for row in ROWS} for arm in ("before", "after")
    }
    ratio = paired(
        [s["after"]["save -> patched"] for s in measured], [s["before"]["save -> patched"] for s in measured]
    )
    return {"edits": n, "stats": stats, "after / before (save -> patched)": ratio, "samples": samples}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--before", type=Path, required=True, help="a checkout of the engine to compare with")
    parser.add_argument("--app", nargs="+", default=["counter"], choices=sorted(APPS))
    parser.add_argument("--edits", type=int, default=21, help="edits per app (the first is a warm-up)")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "hotline-bench")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    meta = run_metadata(**{"before": str(args.before), "order seed": args.seed})
    results = {}
    for app in args.app:
        with tempfile.TemporaryDirectory(prefix="hotline-compare-") as tmp:
            results[app] = compare(app, args.before.resolve(), args.edits, args.cache, Path(tmp), args.seed)
        r = results[app]
        for row in ROWS:
            b, a = r["stats"]["before"][row], r["stats"]["after"][row]
            print(
                f"{app:<12} {row:<16} before {b['median']:7.1f} ({b['q1']:.1f}-{b['q3']:.1f})"
                f"  after {a['median']:7.1f} ({a['q1']:.1f}-{a['q3']:.1f}) ms"
            )
        q = r["after / before (save -> patched)"]
        print(f"{app:<12} after / before, paired: {q['median']:.3f} ({q['q1']:.3f}-{q['q3']:.3f})")
    if args.json:
        args.json.write_text(json.dumps({**meta, "apps": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
