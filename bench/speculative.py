"""Save -> patched with speculative builds (issue 18), next to today's save path and bare rustc.

One running app per example, under a real `hotline lsp` driven over stdio as an editor
drives it (lsp_client.py): `didChange` with the edit's new text, a pause of P ms, then the
file written (atomically, as editors save) and `didSave`. The server's own quiet period
applies (speculativeDelayMs unset: the last speculative build's time, 100 to 300 ms), so
with P = 0 no build starts, and with P = 300 a slow build has not finished at the save.

Arms, each a separate edit of the same running app, the order rotated per edit (edit k
starts with arm k mod the number of arms):
  * save: speculativeBuilds off (didChangeConfiguration), then the same didChange, save:
    today's save path, and the CLI's;
  * P=0, P=300, P=1000, P=2000: didChange, pause P ms, save;
  * typing: one keystroke, a 500 ms pause (a build starts), another keystroke, a 1000 ms
    pause (the first build is killed, the second runs), save: what a pause in the middle of
    an edit costs;
  * bare rustc: the crate's captured rustc command alone, on its own copy of the app.

save -> patched runs from the file written to the arrival of the server's `hotline/status`
notification `patched`. The phases are those `hotline.showLastPatch` shows (what the save
itself spent: with a speculative build planned ahead, diff and link are near zero). Each
edit makes the literal one character longer (two for typing). The first round warms the
caches (the shadow's incremental cache is cold at first) and is kept out of the medians.
Ratios are paired: per round, one arm's time over the save arm's, then their median
(min-max). CPU seconds are those of the speculative rustc processes, from the server's
"Hotline speculative builds" log line: used by a save, or thrown away (killed, superseded,
or not what was saved).

The `workspace` app edits a library of a workspace (tests/apps/workspace): its save
rebuilds the library and the binary after it, and so does a speculative build.

Usage: python bench/speculative.py [--app counter axum-server web-service bevy workspace] [--edits 15]
           [--cache DIR] [--json bench/speculative.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

from lsp_client import LspClient
from save_to_patch import APPS, SETTLE_S, App, BareRustc, app_copy, edit, paired, run_metadata, summary

PAUSES_MS = (0, 300, 1000, 2000)
TYPING_MS = (500, 1000)  # pause within the edit, then before the save
ARMS = ["save", *(f"P={p}" for p in PAUSES_MS), "typing", "bare rustc"]
ROWS = ["save -> patched", "rustc", "diff", "link", "deliver", "apply"]
CPU_ROWS = ["speculative CPU s used", "speculative CPU s thrown away", "speculative builds"]
BUILD_TIMEOUT_S = 3600.0
EDIT_TIMEOUT_S = 300.0
TRACE = re.compile(
    r"Hotline speculative builds: (\d+) started, (\d+) ended, (\d+) used by a save, (\d+) killed; "
    r"rustc CPU ([\d.]+) s used, ([\d.]+) s thrown away"
)
PHASE = re.compile(r"^\| (\w+) \| ([\d.]+) \|$", re.M)


class Speculating:
    """A running app under `hotline lsp`; each `measure` is one edit of its edited file."""

    def __init__(self, crate: Path, app: App, target: Path, log: Path) -> None:
        self.crate, self.app = crate, app
        self.file = crate / app.file
        self.uri = self.file.resolve().as_uri()
        env = os.environ | {"HOTLINE_TARGET_DIR": str(target)}  # dependencies built once
        self.client = LspClient(crate, env, log.open("wb"))
        self.settings: dict = {"appArgs": list(app.args)}
        self.client.request(
            "initialize", {"processId": os.getpid(), "rootUri": crate.as_uri(), "capabilities": {},
                           "initializationOptions": self.settings}, 60,
        )  # fmt: skip
        self.client.notify("initialized", {})
        started = self.client.request(
            "workspace/executeCommand", {"command": "hotline.run", "arguments": []}, BUILD_TIMEOUT_S
        )
        if not started.get("ok"):
            raise SystemExit(f"bench: hotline.run failed: {started}")
        self.version = 1
        self.client.notify(
            "textDocument/didOpen",
            {
                "textDocument": {
                    "uri": self.uri,
                    "languageId": "rust",
                    "version": 1,
                    "text": self.file.read_text(),
                }
            },
        )
        self.length = self.start_length = 0  # of the literal's dashes: now, and before the edit
        time.sleep(1.0)  # let the app settle

    def _configure(self, speculative: bool) -> None:
        self.settings["speculativeBuilds"] = speculative
        self.client.notify("workspace/didChangeConfiguration", {"settings": dict(self.settings)})

    def _keystroke(self, pause_s: float) -> None:
        """The literal one character longer in the editor's buffer (didChange), then a pause."""
        self.length += 1
        buffer = self.file.read_text().replace(
            self.app.text(self.start_length), self.app.text(self.length), 1
        )
        self.version += 1
        self.client.notify(
            "textDocument/didChange",
            {
                "textDocument": {"uri": self.uri, "version": self.version},
                "contentChanges": [{"text": buffer}],
            },
        )
        time.sleep(pause_s)

    def _trace(self) -> tuple[int, int, int, int, float, float]:
        """The newest speculative-builds totals the server logged (all zero before any)."""
        found = (0, 0, 0, 0, 0.0, 0.0)
        for _, method, params in self.client.notifications:
            m = TRACE.match(params.get("message", "")) if method == "window/logMessage" else None
            if m:
                found = (*(int(g) for g in m.groups()[:4]), float(m[5]), float(m[6]))  # type: ignore[assignment]
        return found

    def measure(self, arm: str) -> dict:
        before = self._trace()
        self.start_length = self.length
        if arm == "save":
            self._configure(False)
            self._keystroke(0)
        elif arm == "typing":
            for pause_ms in TYPING_MS:
                self._keystroke(pause_ms / 1000)
        else:
            self._keystroke(int(arm.removeprefix("P=")) / 1000)
        mark = self.client.mark()
        saved = edit(self.file, self.app.text(self.start_length), self.app.text(self.length))
        self.client.notify("textDocument/didSave", {"textDocument": {"uri": self.uri}})
        arrived, _, status = self.client.wait(
            mark,
            lambda m, p: m == "hotline/status" and p["state"] in ("patched", "error", "running", "stopped"),
            EDIT_TIMEOUT_S,
        )
        if status["state"] != "patched":
            raise SystemExit(f"bench: {arm}: {status}")
        if arm == "save":
            self._configure(True)
        shown = self.client.request(
            "workspace/executeCommand", {"command": "hotline.showLastPatch", "arguments": []}, 30
        )
        deadline = time.monotonic() + EDIT_TIMEOUT_S
        while (after := self._trace())[0] > after[1]:  # thrown-away builds ending
            if time.monotonic() > deadline:
                raise SystemExit("bench: a speculative build never ended")
            time.sleep(0.01)
        return {
            "save -> patched": (arrived - saved) * 1000,
            **{name: float(ms) for name, ms in PHASE.findall(shown)},
            "speculative": "(compiled while you typed)" in shown,
            "planned ahead": "Compiled, diffed and linked while you typed" in shown,
            "speculative builds": after[0] - before[0],
            "speculative CPU s used": after[4] - before[4],
            "speculative CPU s thrown away": after[5] - before[5],
        }

    def totals(self) -> dict:
        builds, ended, used, killed, cpu_used, cpu_wasted = self._trace()
        return {"builds": builds, "ended": ended, "used": used, "killed": killed,
                "cpu_s_used": cpu_used, "cpu_s_wasted": cpu_wasted}  # fmt: skip

    def close(self) -> None:
        try:
            self.client.request("workspace/executeCommand", {"command": "hotline.stop", "arguments": []}, 30)
        finally:
            self.client.close()


def bench_app(name: str, rounds: int, cache: Path, root: Path) -> dict:
    spec = APPS[name]
    log = root / f"{name}-lsp.log"
    driver = Speculating(app_copy(name, root / "speculative"), spec, cache / name / "speculative", log)
    try:
        bare = BareRustc(app_copy(name, root / "bare"), spec, cache / name / "spec-bare")
        samples = []
        for k in range(rounds):
            order = ARMS[k % len(ARMS) :] + ARMS[: k % len(ARMS)]
            sample: dict = {"order": order, "load average (1 min)": os.getloadavg()[0]}
            for arm in order:
                sample[arm] = bare.measure(k + 1) if arm == "bare rustc" else driver.measure(arm)
                time.sleep(SETTLE_S)
            samples.append(sample)
            print(f"{name} round {k + 1}/{rounds}: " + json.dumps(sample), file=sys.stderr, flush=True)
        cpu = driver.totals()
    finally:
        driver.close()
    measured = samples[1:]  # the first round warms the caches
    stats: dict = {}
    for arm in ARMS[:-1]:
        for row in ROWS + CPU_ROWS:
            stats[f"{arm}: {row}"] = summary([s[arm][row] for s in measured])
        stats[f"{arm}: speculative build used"] = sum(s[arm]["speculative"] for s in measured)
        stats[f"{arm}: planned ahead"] = sum(s[arm]["planned ahead"] for s in measured)
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
    head = ("", "save -> patched", "rustc phase", "spec./ahead", "CPU s used", "CPU s thrown away")
    for name, r in results.items():
        rounds = r["rounds"] - 1
        print(f"\n{name}: median ms (min-max) over {rounds} rounds after the first; CPU s: medians per edit")
        print("{:<12}{:>22}{:>20}{:>12}{:>12}{:>18}".format(*head))
        for arm in ARMS[:-1]:
            stats = {row: r["stats"][f"{arm}: {row}"] for row in ROWS + CPU_ROWS}
            used = f"{r['stats'][f'{arm}: speculative build used']}/{r['stats'][f'{arm}: planned ahead']}"
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
    meta = run_metadata(driver="hotline lsp over stdio, default settings (speculativeDelayMs unset)")
    began = time.perf_counter()
    results = {}
    for name in args.app:
        with tempfile.TemporaryDirectory(prefix="hotline-bench-") as tmp:
            results[name] = bench_app(name, args.edits, args.cache, Path(tmp))
    meta["duration s"] = round(time.perf_counter() - began, 1)
    meta["load average at the end (1, 5, 15 min)"] = os.getloadavg()
    print_table(results)
    print(f"took {meta['duration s']:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({**meta, "apps": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
