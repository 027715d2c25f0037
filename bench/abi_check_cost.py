"""What the ABI check (issue 24, server/hotline/engine/analyse/function_abi.py) costs a save, paired
in one run: each bundled app is patched with the check on and off in turn (the order of
each pair drawn at random), through a real Session, and the `patched` event's phases are
compared. The check runs inside planning, after the diff (`diff`) and while the patch scope
is walked (`link`), so both phases and their sum are shown.

Usage: python bench/abi_check_cost.py [--pairs 10] [--apps counter axum-server]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import hotline.engine.patch_plan as patch_plan
from hotline.engine.analyse.function_abi import AbiComparison
from hotline.engine.session import Session
from hotline.examples import copy_app

EDITS = {  # the text each edit replaces, and the text with i dashes
    "counter": ('"hello', '"hello{}'),
    "axum-server": ('format!("hello', 'format!("hello{}'),
    "web-service": ('format!("hello', 'format!("hello{}'),
}
ARGS = {"counter": [], "axum-server": ["127.0.0.1:0"], "web-service": ["127.0.0.1:0"]}


class NoAbiCheck(AbiComparison):
    """The check switched off: every function counts as unchanged."""

    def change(self, symbol: str) -> str | None:
        return None


def patch_once(session: Session, main_rs: Path, old: str, new: str, check: bool) -> dict:
    text = main_rs.read_text()
    temp = main_rs.with_suffix(".rs.saving")
    temp.write_text(text.replace(old, new, 1))
    temp.replace(main_rs)
    patch_plan.AbiComparison = AbiComparison if check else NoAbiCheck  # type: ignore[misc]
    outcome = session.patch()
    if outcome.kind != "patched":
        raise SystemExit(f"bench: {outcome.kind}: {outcome.event}")
    return outcome.event


def bench_app(name: str, pairs: int, root: Path, rng: random.Random) -> dict[str, dict[str, list[float]]]:
    crate = copy_app(name, root)
    started = threading.Event()
    session = Session(
        crate, lambda e: started.set() if e["event"] in ("app-started",) else None, app_args=ARGS[name]
    )
    session.start()
    started.wait(600)
    time.sleep(1.0)
    main_rs = crate / "src" / "main.rs"
    anchor, template = EDITS[name]
    current = anchor
    out: dict[str, dict[str, list[float]]] = {"on": {}, "off": {}}
    i = 0
    for _ in range(pairs):
        for arm in rng.sample(["on", "off"], 2):
            i += 1
            new = template.format("-" * i)
            event = patch_once(session, main_rs, current, new, arm == "on")
            current = new
            phases = event["phases"]
            for key, value in (
                ("diff", phases["diff"]),
                ("link", phases["link"]),
                ("save -> patched", event["ms"]),
            ):
                out[arm].setdefault(key, []).append(value)
            out[arm].setdefault("diff + link", []).append(phases["diff"] + phases["link"])
            time.sleep(0.3)
    session.stop()
    patch_plan.AbiComparison = AbiComparison  # type: ignore[misc]
    return out


def spread(xs: list[float]) -> str:
    q = statistics.quantiles(xs, n=4) if len(xs) >= 2 else [xs[0]] * 3
    return f"{statistics.median(xs):7.1f} ms [{q[0]:.1f}-{q[2]:.1f}]"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--apps", nargs="+", default=["counter", "axum-server"])
    args = parser.parse_args()
    rng = random.Random(24)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.apps:
            data = bench_app(name, args.pairs, Path(tmp), rng)
            print(f"\n{name}: {args.pairs} pairs, median [quartiles]")
            for key in ("diff", "link", "diff + link", "save -> patched"):
                on, off = data["on"][key], data["off"][key]
                ratio = (
                    statistics.median(on) / statistics.median(off) if statistics.median(off) else float("nan")
                )
                print(f"  {key:16} check on {spread(on)}   off {spread(off)}   on/off {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
