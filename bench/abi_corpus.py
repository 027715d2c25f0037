"""The ABI corpus, full run (issue 24): every kind of generated program at opt-levels 0
and 1, several seeds, many random edits each (tests/abi_corpus.py says what is generated
and how each printed value is checked). Prints each edit's outcome and the count of each:
`new` (the new code's output appeared), `named` (a warning named a function, or a rule
refused the patch), `silent` (patched, no new output, nothing named), `crash`, `wrong`.
Exits 1 on any crash or wrong value.

Usage: python bench/abi_corpus.py [--seeds 2] [--edits 11]
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from abi_corpus import KINDS, run_app  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=2, help="programs per kind and opt-level")
    parser.add_argument("--edits", type=int, default=11, help="edits per program")
    args = parser.parse_args()
    counts: collections.Counter[str] = collections.Counter()
    by_kind: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            for opt in (0, 1):
                for kind in KINDS:
                    folder = Path(tmp) / f"{kind}-{opt}-{seed}"
                    for o in run_app(folder, kind, opt, 1000 * seed + 10 * opt, args.edits):
                        counts[o.result] += 1
                        by_kind[f"{kind} opt={opt}"][o.result] += 1
                        print(
                            f"{o.kind:9} opt={o.opt} gen={o.gen:2} {o.result:6} {o.detail[:150]}", flush=True
                        )
    print(f"\n{sum(counts.values())} edits in {time.monotonic() - started:.0f} s")
    for name, c in sorted(by_kind.items()):
        print(f"  {name:18} " + " ".join(f"{k}={v}" for k, v in sorted(c.items())))
    print("total: " + " ".join(f"{k}={counts[k]}" for k in ("new", "named", "silent", "crash", "wrong")))
    return 1 if counts["crash"] or counts["wrong"] else 0


if __name__ == "__main__":
    sys.exit(main())
