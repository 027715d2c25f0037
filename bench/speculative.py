"""Save -> patched with speculative builds (issue 18), next to today's save path and bare rustc.

One running app per example, driven through its Session as the language server drives it:
the edit's new text goes to `Session.speculate` (the build the language server starts once a
buffer has been left unchanged for speculativeDelayMs), then after a pause of P ms the file is
written (atomically, as editors save) and patched. With --delay-ms D (default 0) the language
server's quiet period is modelled too: the build starts D ms into the pause, and not at all if
P < D. So with D = 0, P counts from the start of the speculative build; in an editor with the
default speculativeDelayMs of 300, the pause after the last keystroke is P + 300 ms.

Arms, each a separate edit of the same running app, the order rotated per edit (edit k
starts with arm k mod the number of arms):
  * save: the file written and patched, no speculation (today's path, and the CLI's);
  * P=0, P=300, P=1000, P=2000: speculate, pause P ms, save;
  * typing: one keystroke, a 500 ms pause (a build starts), another keystroke (that build is
    thrown away), a 1000 ms pause, save: what a pause in the middle of an edit costs;
  * bare rustc: the crate's captured rustc command alone, on its own copy of the app.

save -> patched runs from the file written to the `patched` event (no file watcher: the
language server is told of a save by didSave). Each edit makes the literal one character
longer (two for typing). The first round warms the caches (the shadow's incremental cache is
cold at first) and is kept out of the medians. Ratios are paired: per round, one arm's time over
the save arm's, then their median (min-max). CPU seconds are those of the speculative rustc
processes (wait4), used by a save or thrown away (killed, superseded, or not what was saved).

Usage: python bench/speculative.py [--app counter axum-server web-service] [--edits 15]
           [--delay-ms 0] [--cache DIR] [--json bench/speculative.json]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hotline.engine.session import Session
from hotline.examples import copy_app
from save_to_patch import APPS, SETTLE_S, App, BareRustc, edit, git_commit, paired, summary

PAUSES_MS = (0, 300, 1000, 2000)
TYPING_MS = (500, 1000)  # pause within the edit, then before the save
ARMS = ["save", *(f"P={p}" for p in PAUSES_MS), "typing", "bare rustc"]
ROWS = ["save -> patched", "rustc", "diff", "link", "deliver", "apply"]
CPU_ROWS = ["speculative CPU s used", "speculative CPU s thrown away", "speculative builds"]
IDLE_TIMEOUT_S = 600.0


class Speculating:
    """A running app under a Session; each `measure` is one edit of its src/main.rs."""

    def __init__(self, crate: Path, app: App, target: Path, delay_ms: float) -> None:
        self.crate, self.app, self.delay_s = crate, app, delay_ms / 1000
        self.main = crate / "src" / "main.rs"
        self.stamps: dict[str, float] = {}
        self.session = Session(crate, self._on_event, app_args=list(app.args), target_dir=target)
        self.session.start()
        self.length = self.start_length = 0  # of the literal's dashes: now, and before the edit
        time.sleep(1.0)  # let the app settle

    def _on_event(self, event: dict) -> None:
        if event["event"] == "patched":
            self.stamps["patched"] = time.perf_counter()

    def _keystroke(self, pause_s: float) -> None:
        """The literal one character longer in the editor's buffer only, then a pause, during
        which the language server starts a speculative build once `delay_s` has passed."""
        self.length += 1
        buffer = self.main.read_text().replace(
            self.app.text(self.start_length), self.app.text(self.length), 1
        )
        if pause_s < self.delay_s:
            time.sleep(pause_s)
            return
        time.sleep(self.delay_s)
        self.session.speculate({self.main: buffer})
        time.sleep(pause_s - self.delay_s)

    def measure(self, arm: str) -> dict:
        builder = self.session.speculative
        before = dict(builder.stats)
        self.start_length = self.length
        if arm == "save":
            self.length += 1
        elif arm == "typing":
            for pause_ms in TYPING_MS:
                self._keystroke(pause_ms / 1000)
        else:
            self._keystroke(int(arm.removeprefix("P=")) / 1000)
        saved = edit(self.crate, self.app.text(self.start_length), self.app.text(self.length))
        outcome = self.session.patch()
        if outcome.kind != "patched":
            raise SystemExit(f"bench: {arm}: {outcome.event}")
        event = outcome.event
        deadline = time.monotonic() + IDLE_TIMEOUT_S
        while builder.stats["ended"] < builder.stats["builds"]:  # thrown-away builds ending
            if time.monotonic() > deadline:
                raise SystemExit("bench: a speculative build never ended")
            time.sleep(0.01)
        after = builder.stats
        return {
            "save -> patched": (self.stamps["patched"] - saved) * 1000,
            **event["phases"],
            "speculative": bool(event.get("speculative")),
            "speculative builds": after["builds"] - before["builds"],
            "speculative CPU s used": after["cpu_s_used"] - before["cpu_s_used"],
            "speculative CPU s thrown away": after["cpu_s_wasted"] - before["cpu_s_wasted"],
        }

    def close(self) -> None:
        self.session.stop()


def bench_app(name: str, rounds: int, delay_ms: float, cache: Path, root: Path) -> dict:
    spec = APPS[name]
    driver = Speculating(copy_app(name, root / "speculative"), spec, cache / name / "speculative", delay_ms)
    try:
        bare = BareRustc(copy_app(name, root / "bare"), spec, cache / name / "spec-bare")
        samples = []
        for k in range(rounds):
            order = ARMS[k % len(ARMS) :] + ARMS[: k % len(ARMS)]
            sample: dict = {"order": order, "load average (1 min)": os.getloadavg()[0]}
            for arm in order:
                sample[arm] = bare.measure(k + 1) if arm == "bare rustc" else driver.measure(arm)
                time.sleep(SETTLE_S)
            samples.append(sample)
            print(f"{name} round {k + 1}/{rounds}: " + json.dumps(sample), file=sys.stderr, flush=True)
        cpu = dict(driver.session.speculative.stats)
    finally:
        driver.close()
    measured = samples[1:]  # the first round warms the caches
    stats: dict = {}
    for arm in ARMS[:-1]:
        for row in ROWS + CPU_ROWS:
            stats[f"{arm}: {row}"] = summary([s[arm][row] for s in measured])
        stats[f"{arm}: speculative build used"] = sum(s[arm]["speculative"] for s in measured)
    stats["bare rustc"] = summary([s["bare rustc"] for s in measured])
    saves = [s["save"]["save -> patched"] for s in measured]
    ratios = {
        f"{arm} / save (save -> patched)": paired([s[arm]["save -> patched"] for s in measured], saves)
        for arm in ARMS[1:-1]
    }
    ratios["save / bare rustc"] = paired(saves, [s["bare rustc"] for s in measured])
    return {
        "rounds": rounds,
        "first round": samples[0],
        "stats": stats,
        "paired ratios": ratios,
        "speculative builds, whole run": cpu,
        "samples": samples,
    }


def _cell(s: dict) -> str:
    return f"{s['median']:.1f} ({s['min']:.0f}-{s['max']:.0f})" if s["n"] else "-"


def print_table(results: dict[str, dict]) -> None:
    head = ("", "save -> patched", "rustc phase", "used spec.", "CPU s used", "CPU s thrown away")
    for name, r in results.items():
        rounds = r["rounds"] - 1
        print(f"\n{name}: median ms (min-max) over {rounds} rounds after the first; CPU s: medians per edit")
        print("{:<12}{:>22}{:>20}{:>12}{:>12}{:>18}".format(*head))
        for arm in ARMS[:-1]:
            stats = {row: r["stats"][f"{arm}: {row}"] for row in ROWS + CPU_ROWS}
            used = f"{r['stats'][f'{arm}: speculative build used']}/{rounds}"
            cpu = stats["speculative CPU s used"]["median"]
            wasted = stats["speculative CPU s thrown away"]["median"]
            print(
                f"{arm:<12}{_cell(stats['save -> patched']):>22}{_cell(stats['rustc']):>20}"
                f"{used:>12}{cpu:>12.3f}{wasted:>18.3f}"
            )
        print(f"{'bare rustc':<12}{_cell(r['stats']['bare rustc']):>22}")
        for ratio, s in r["paired ratios"].items():
            print(f"  {ratio}: {s['median']:.2f} ({s['min']:.2f}-{s['max']:.2f})")
        print(f"  speculative builds, whole run: {r['speculative builds, whole run']}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--app", nargs="+", default=["counter"], choices=sorted(APPS))
    parser.add_argument("--edits", type=int, default=15, help="rounds per app (the first is a warm-up)")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="the language server's quiet period")
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path.home() / ".cache" / "hotline-bench",
        help="build directories kept between runs (dependencies are compiled once)",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.edits < 3:
        parser.error("--edits must be at least 3: a warm-up and two measured rounds")
    rustc = subprocess.run(["rustc", "-V"], capture_output=True, text=True).stdout.strip()
    meta = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}, "
        f"python {platform.python_version()}, {rustc}",
        "commit": git_commit(),
        "command": shlex.join(["python", *sys.argv]),
        "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "delay ms": args.delay_ms,
        "load average at the start (1, 5, 15 min)": os.getloadavg(),
    }
    began = time.perf_counter()
    results = {}
    for name in args.app:
        with tempfile.TemporaryDirectory(prefix="hotline-bench-") as tmp:
            results[name] = bench_app(name, args.edits, args.delay_ms, args.cache, Path(tmp))
    meta["duration s"] = round(time.perf_counter() - began, 1)
    meta["load average at the end (1, 5, 15 min)"] = os.getloadavg()
    print_table(results)
    print(f"took {meta['duration s']:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({**meta, "apps": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
