"""The receipt corpus, full run (issue 25): generated programs at opt-levels 0 to 3, many
random edits each (tests/receipt_corpus.py says what is generated and how each edit is
judged). Prints each edit's outcome and the count of each: `new`, `named`, `silent`,
`crash`, `wrong`. Exits 1 on any silent receipt, crash or wrong value.

Usage: python bench/receipt_corpus.py [--seeds 2] [--edits 25]
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from receipt_corpus import run_app  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=2, help="programs per opt-level")
    parser.add_argument("--edits", type=int, default=25, help="edits per program")
    args = parser.parse_args()
    counts: collections.Counter[str] = collections.Counter()
    by_site: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            for opt in range(4):
                for o in run_app(Path(tmp) / f"r-{opt}-{seed}", opt, 100 * seed + opt, args.edits):
                    counts[o.result] += 1
                    by_site[o.site][o.result] += 1
                    print(f"opt={o.opt} {o.site:7} gen={o.gen:2} {o.result:6} {o.detail[:150]}", flush=True)
    print(f"\n{sum(counts.values())} edits in {time.monotonic() - started:.0f} s")
    for site, c in sorted(by_site.items()):
        print(f"  {site:8} " + " ".join(f"{k}={v}" for k, v in sorted(c.items())))
    print("total: " + " ".join(f"{k}={counts[k]}" for k in ("new", "named", "silent", "crash", "wrong")))
    return 1 if counts["silent"] or counts["crash"] or counts["wrong"] else 0


if __name__ == "__main__":
    sys.exit(main())
