"""Save -> new code ran on the bundled examples, for Hotline and two baselines, paired per edit.

The same sequence of edits is written to five copies of each app, one arm after another per
edit, in an order shuffled afresh for each edit (seeded: the run can be repeated). A rotated
order kept each arm's neighbours: the no-debug-info arm nearly always ran right after the
strict arm, while that arm's debug ELF was still being written in the background, and paid
for it. Each sample records its order:
  * hotline: `hotline run --json` as a user runs it. From the file written, the clock reads
    save -> patched at the `patched` event (split into watch = file written -> patch
    started, rustc, diff, link = scope and relocation, deliver and apply, entry jumps
    included) and save -> new code ran at the first output only the new code can produce;
  * hotline, strict safe points: the same with `--no-entry-jumps`, as patches were applied
    before entry jumps (callers relinked up to a safe point, no jumps written);
  * hotline, no debug info: the same with `--no-debug-info`, to show that writing each
    patch's debug ELF after `patched` costs the save nothing (save -> patched paired with
    the hotline arm's);
  * bare rustc: the crate's captured rustc command alone, replayed after the same edit,
    the compile any patcher has to pay (it runs no code: its end point is rustc's exit);
  * cargo + restart: incremental `cargo build`, then the new binary is started and timed to
    the same end point as the hotline arms (the old process is not stopped on the clock).

The end point "new code ran" is the same for every arm that runs the app:
  * counter (the edit is in the literal `greeting` returns): the first line the app prints
    with the new literal, read from `hotline run`'s `app-output` events or from the new
    binary's stdout. The counter prints one line per 100 ms tick, so a patched counter shows
    its new code up to a tick after the patch, while a restarted one prints at once;
  * axum-server, web-service (the edit is in the format string of the `greet` handler):
    GET /hello/x on one keep-alive connection, sent right after the save, then every
    POLL_MS and once more as soon as the `patched` event is read, until the response
    carries the new text; for cargo + restart, on the new process as soon as it prints its
    address, then every POLL_MS. (Polling faster costs the app, hence the machine and
    rustc, CPU: a debug-build web-service takes about 1 ms to answer.)
  * bevy (the edit is in the `label=tick` of the Update system `report`, which prints one
    line a frame, 20 frames a second): the first frame line with the new label;
  * workspace (only with --app; tests/apps/workspace): the edit is in a library of the
    workspace, whose save rebuilds the library and then the binary; the first line the app
    prints with the new literal.

Each edit makes the literal one character longer, as typing does. The first edit warms the
caches: it is reported apart and kept out of the medians. Ratios are paired: per edit, one
arm's time over another's, then the median (and spread) of those ratios over the edits.

Usage: python bench/save_to_patch.py [--app counter axum-server web-service bevy] [--edits 15]
           [--cache DIR] [--json bench/results.json]
       python bench/save_to_patch.py --markdown bench/results.json   (the README's table)
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import os
import platform
import queue
import random
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from hotline.engine.build.workspace import dirty_crates, owning_crate
from hotline.engine.session import Session
from hotline.examples import copy_app

REPO = Path(__file__).resolve().parent.parent
POLL_MS = 20.0  # servers: period of the GET /hello/x polls after a save (each costs the app CPU)
NEW_CODE_WAIT_S = 5.0  # after `patched`, how long to wait for the new code before calling it unseen
EDIT_TIMEOUT_S = 300.0
BUILD_TIMEOUT_S = 3600.0  # a cold fat build of web-service takes minutes
SETTLE_S = 0.3  # between arms: a user does not save twice that fast
FAILURES = ("compile-error", "patch-refused", "no-change", "app-exited", "restarting")


@dataclass(frozen=True)
class App:
    literal: str  # the text edit i writes: {} is i dashes
    shows: str  # what only the code of edit i prints (stdout line) or answers (HTTP body)
    args: tuple[str, ...]
    http: bool  # the new code shows in the answer to GET /hello/x, else in a stdout line
    member: str = ""  # the package run, within the app's folder (a workspace member)
    file: str = "src/main.rs"  # the edited file, from the member's folder
    binary: str = ""  # the executable's name, when it is not the app's folder name

    def text(self, i: int) -> str:
        return self.literal.format("-" * i)

    def marker(self, i: int) -> str:
        return self.shows.format("-" * i)


APPS = {
    "counter": App('"hello{}"', "hello{} frame=", (), http=False),
    "axum-server": App('format!("hello{}, {{name}}\\n")', "hello{}, x", ("127.0.0.1:0",), http=True),
    "web-service": App('format!("hello{}, {{name}}\\n")', "hello{}, x", ("127.0.0.1:0",), http=True),
    # an Update system's body (examples/bevy: headless, 20 frames a second)
    "bevy": App('label=tick{}"', "label=tick{}", (), http=False, binary="bevy-headless"),
    # an edit in a library of a workspace: the library and the binary after it are rebuilt
    "workspace": App(
        '"lib-v1{} calls=', "lib-v1{} calls=", (), http=False, member="app", file="../engine/src/lib.rs"
    ),
}
EXAMPLES = ["counter", "axum-server", "web-service", "bevy"]
ARMS = ["hotline", "strict", "no debug info", "bare rustc", "cargo build + restart"]
HOT_ROWS = ["watch", "rustc", "diff", "link", "deliver", "apply", "save -> patched", "save -> new code ran"]
HOT_COUNTS = ["units linked", "entry jumps written", "entry jumps skipped"]
STRICT_ROWS = ["link", "apply", "save -> patched", "save -> new code ran", "units linked"]


def app_copy(name: str, dest: Path) -> Path:
    """A fresh copy of a bundled app (hotline.examples): the folder of the package it runs."""
    return copy_app(name, dest) / APPS[name].member


def edit(path: Path, old: str, new: str) -> float:
    """Saves the edit atomically, as editors do; the clock starts just before the rename."""
    temp = path.with_suffix(".rs.saving")
    temp.write_text(path.read_text().replace(old, new, 1))
    saved = time.perf_counter()
    temp.replace(path)
    return saved


def port_of(line: str) -> int:
    """The port in the servers' first line, `listening on http://127.0.0.1:PORT`."""
    if not line.startswith("listening on http://"):
        raise SystemExit(f"bench: unexpected first line {line!r}")
    return int(line.rstrip().rsplit(":", 1)[1])


class Http:
    """GET /hello/x on one keep-alive connection, reconnecting only when the server closed it."""

    def __init__(self, port: int) -> None:
        self.port, self.conn, self.connections = port, None, 0

    def get(self) -> str:
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                self.connections += 1
            try:
                self.conn.request("GET", "/hello/x")
                return self.conn.getresponse().read().decode(errors="replace")
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


class HotlineRun:
    """`hotline run --json`, its events read on a thread and stamped when they arrive."""

    def __init__(
        self, crate: Path, app: App, target: Path, flags: tuple[str, ...] = (), env: dict | None = None
    ) -> None:
        self.crate, self.app = crate, app
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hotline", "run", str(crate), "--json", *flags, "--", *app.args],
            stdout=subprocess.PIPE,
            text=True,
            env=os.environ | {"HOTLINE_TARGET_DIR": str(target)} | (env or {}),
        )
        self.events: queue.Queue[tuple[float, dict]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.http: Http | None = None
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    def _start(self) -> None:
        """Until the app runs (servers: until they print their address), then a settling second."""
        started = False
        while not started or (self.app.http and self.http is None):
            for _, event in self._next(BUILD_TIMEOUT_S):
                kind = event["event"]
                if kind in FAILURES or (kind == "build-finished" and not event["ok"]):
                    raise SystemExit(f"bench: {event}")
                started = started or kind == "app-started"
                # the app's first line may come before `app-started`: both are sent as they happen
                if self.app.http and kind == "app-output" and event["stream"] == "stdout":
                    self.http = self.http or Http(port_of(event["line"]))
        time.sleep(1.0)  # let the app and the watcher settle
        self._next(0)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.events.put((time.perf_counter(), json.loads(line)))
        self.events.put((time.perf_counter(), {"event": "hotline-exited"}))

    def _next(self, timeout: float) -> list[tuple[float, dict]]:
        """Every event that arrived, waiting up to `timeout` s for the first one."""
        out = []
        try:
            out.append(self.events.get(timeout=timeout) if timeout > 0 else self.events.get_nowait())
            while True:
                out.append(self.events.get_nowait())
        except queue.Empty:
            pass
        if any(e["event"] == "hotline-exited" for _, e in out):
            raise SystemExit("bench: hotline run exited")
        return out

    def measure(self, i: int) -> dict:
        self._next(0)  # the app's output since the last edit
        if self.http is not None:
            self.http.get()  # the connection is open (and was used) before the clock starts
        marker = self.app.marker(i)
        saved = edit(self.crate / self.app.file, self.app.text(i - 1), self.app.text(i))
        seen: dict[str, tuple[float, dict]] = {}
        ran = None
        poll = saved  # servers: when to send the next GET
        while ran is None or "patched" not in seen:
            now = time.perf_counter()
            if "patched" in seen and now > seen["patched"][0] + NEW_CODE_WAIT_S:
                break  # the new code did not run: reported as unseen
            if now > saved + EDIT_TIMEOUT_S:
                raise SystemExit(f"bench: no patch {EDIT_TIMEOUT_S:.0f} s after edit {i}")
            polling = self.http is not None and ran is None
            if polling and now >= poll:
                if marker in self.http.get():
                    ran = time.perf_counter()
                    continue
                poll = time.perf_counter() + POLL_MS / 1000
            for t, event in self._next(max(poll - time.perf_counter(), 0.0001) if polling else 1.0):
                kind = event["event"]
                if kind in ("patch-started", "patched") and kind not in seen:
                    seen[kind] = (t, event)
                    if kind == "patched":
                        poll = 0.0  # and one GET as soon as the patch is reported applied
                elif kind == "app-output" and self.http is None and ran is None and marker in event["line"]:
                    ran = t
                elif kind in FAILURES:
                    raise SystemExit(f"bench: edit {i}: {event}")
        (started, _), (done, event) = seen["patch-started"], seen["patched"]
        return {
            "watch": (started - saved) * 1000,
            **event["phases"],
            "save -> patched": (done - saved) * 1000,
            "save -> new code ran": None if ran is None else (ran - saved) * 1000,
            "units linked": event["units"]["linked"],
            "units total": event["units"]["total"],
            "entry jumps written": event["entry_jumps"]["written"],
            "entry jumps skipped": event["entry_jumps"]["skipped"],
        }

    def close(self) -> None:
        if self.http is not None:
            self.http.close()
        self.proc.terminate()
        self.proc.wait(timeout=30)


class BareRustc:
    """The captured rustc commands alone, replayed after the edit: those of the crates a save
    of the edited file rebuilds (the binary; for a library, it and the crates after it)."""

    def __init__(self, crate: Path, app: App, target: Path) -> None:
        self.crate, self.app = crate, app
        self.session = Session(crate, lambda e: None, target_dir=target)
        self.session.fat_build()
        owner = owning_crate(self.session.crates, crate / app.file)
        if owner is None:
            raise SystemExit(f"bench: {app.file} is not a source of the app")
        self.chain = dirty_crates(self.session.crates, {owner.key})

    def measure(self, i: int) -> float:
        edit(self.crate / self.app.file, self.app.text(i - 1), self.app.text(i))
        started = time.perf_counter()
        for crate in self.chain:
            scratch = self.session.target_dir / "bench-objects" / str(i) / crate.key
            scratch.mkdir(parents=True, exist_ok=True)
            rc, _ = crate.replay(scratch)
            if rc != 0:
                raise SystemExit(f"bench: bare rustc of {crate.name} failed")
        return (time.perf_counter() - started) * 1000


class CargoRestart:
    """Incremental `cargo build`, then the new binary until its first output of the new code."""

    def __init__(self, crate: Path, app: App, target: Path) -> None:
        self.crate, self.name, self.app, self.target = crate, app.binary or crate.name, app, target
        self.env = os.environ | {"CARGO_TARGET_DIR": str(target)}
        subprocess.run(["cargo", "build", "-q"], cwd=crate, check=True, env=self.env)

    def measure(self, i: int) -> float:
        marker = self.app.marker(i)
        started = edit(self.crate / self.app.file, self.app.text(i - 1), self.app.text(i))
        subprocess.run(["cargo", "build", "-q"], cwd=self.crate, check=True, env=self.env)
        proc = subprocess.Popen(
            [str(self.target / "debug" / self.name), *self.app.args], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        try:
            if not self.app.http:
                for line in proc.stdout:
                    if marker in line:
                        return (time.perf_counter() - started) * 1000
                raise SystemExit(f"bench: the restarted {self.name} never printed {marker!r}")
            client = Http(port_of(proc.stdout.readline()))
            try:
                while time.perf_counter() < started + EDIT_TIMEOUT_S:
                    try:
                        if marker in client.get():
                            return (time.perf_counter() - started) * 1000
                    except OSError:
                        pass  # not accepting yet
                    time.sleep(POLL_MS / 1000)
            finally:
                client.close()
            raise SystemExit(f"bench: the restarted {self.name} never answered {marker!r}")
        finally:
            proc.kill()
            proc.wait()


def summary(xs: list[float | None]) -> dict:
    """Median, min-max and quartiles of the values seen; `unseen` counts the missing ones."""
    seen = sorted(x for x in xs if x is not None)
    out: dict = {"n": len(seen), "unseen": len(xs) - len(seen)}
    if seen:
        q1, _, q3 = statistics.quantiles(seen, n=4, method="inclusive") if len(seen) > 1 else [seen[0]] * 3
        out |= {"median": statistics.median(seen), "min": seen[0], "max": seen[-1], "q1": q1, "q3": q3}
    return out


def paired(num: list[float | None], den: list[float | None]) -> dict:
    """Per edit num/den, then their median and spread, over the edits where both were seen."""
    return summary([a / b for a, b in zip(num, den, strict=True) if a is not None and b is not None])


def bench_app(app: str, n: int, cache: Path, root: Path, seed: int = 0) -> dict:
    spec = APPS[app]
    hot_run = HotlineRun(app_copy(app, root / "hotline"), spec, cache / app / "hotline")
    strict_run = plain_run = None
    try:
        strict_run = HotlineRun(
            app_copy(app, root / "strict"), spec, cache / app / "strict", ("--no-entry-jumps",)
        )
        plain_run = HotlineRun(
            app_copy(app, root / "nodebug"), spec, cache / app / "nodebug", ("--no-debug-info",)
        )
        arms = {
            "hotline": hot_run.measure,
            "strict": strict_run.measure,
            "no debug info": plain_run.measure,
            "bare rustc": BareRustc(app_copy(app, root / "bare"), spec, cache / app / "bare").measure,
            "cargo build + restart": CargoRestart(
                app_copy(app, root / "cargo"), spec, cache / app / "cargo"
            ).measure,
        }
        samples = []
        shuffle = random.Random(f"{seed}:{app}")
        for k in range(n):
            order = shuffle.sample(ARMS, len(ARMS))
            sample: dict = {"order": order, "load average (1 min)": os.getloadavg()[0]}
            for arm in order:
                sample[arm] = arms[arm](k + 1)
                time.sleep(SETTLE_S)
            samples.append(sample)
            print(f"{app} edit {k + 1}/{n}: " + json.dumps(sample), file=sys.stderr, flush=True)
        connections = {
            arm: run.http.connections
            for arm, run in (("hotline", hot_run), ("strict", strict_run))
            if run.http
        }
    finally:
        hot_run.close()
        for run in (strict_run, plain_run):
            if run is not None:
                run.close()
    measured = samples[1:]  # the first save also pays for warming caches
    hot = {r: [s["hotline"][r] for s in measured] for r in HOT_ROWS + HOT_COUNTS}
    strict = {r: [s["strict"][r] for s in measured] for r in STRICT_ROWS}
    plain = [s["no debug info"]["save -> patched"] for s in measured]
    bare = [s["bare rustc"] for s in measured]
    cargo = [s["cargo build + restart"] for s in measured]
    stats = {r: summary(xs) for r, xs in hot.items()}
    # the engine's own work per save: everything but rustc, from the file written to `patched`
    stats["save -> patched - rustc"] = summary(
        [s["hotline"]["save -> patched"] - s["hotline"]["rustc"] for s in measured]
    )
    stats |= {f"{r} (strict safe points)": summary(xs) for r, xs in strict.items()}
    stats["save -> patched (no debug info)"] = summary(plain)
    stats["bare rustc"] = summary(bare)
    stats["cargo build + restart"] = summary(cargo)
    return {
        "edits": n,
        "units total": measured[0]["hotline"]["units total"],
        "http connections opened": connections,
        "first edit": samples[0],
        "stats": stats,
        "paired ratios": {
            "cargo build + restart / hotline (save -> new code ran)": paired(
                cargo, hot["save -> new code ran"]
            ),
            "cargo build + restart / strict (save -> new code ran)": paired(
                cargo, strict["save -> new code ran"]
            ),
            "hotline save -> patched / bare rustc": paired(hot["save -> patched"], bare),
            "hotline save -> patched / no debug info": paired(hot["save -> patched"], plain),
            "strict save -> patched / bare rustc": paired(strict["save -> patched"], bare),
        },
        "samples": samples,
    }


def print_table(results: dict[str, dict], meta: dict) -> None:
    apps = list(results)
    print(f"median ms (min-max) of each app's edits after the first; {meta['machine']}")
    print(f"{meta['command']}  @ {meta['commit']}")
    print(f"{'':<44}" + "".join(f"{a:>26}" for a in apps))
    for row in next(iter(results.values()))["stats"]:
        cells = []
        for a in apps:
            s = results[a]["stats"][row]
            cell = f"{s['median']:.1f} ({s['min']:.0f}-{s['max']:.0f})" if s["n"] else "-"
            cells.append(cell + (f" {s['unseen']} unseen" if s["unseen"] else ""))
        print(f"{row:<44}" + "".join(f"{c:>26}" for c in cells))
    print("paired ratios, median (min-max) over edits:")
    for ratio in next(iter(results.values()))["paired ratios"]:
        cells = []
        for a in apps:
            s = results[a]["paired ratios"][ratio]
            cells.append(f"{s['median']:.2f} ({s['min']:.2f}-{s['max']:.2f})" if s["n"] else "-")
        print(f"{ratio:<44}" + "".join(f"{c:>26}" for c in cells))


def _ms(s: dict) -> str:
    digits = 1 if s["max"] < 10 else 0
    cell = f"{s['median']:.1f} ({s['min']:.{digits}f}–{s['max']:.{digits}f})"
    return cell + (f", unseen in {s['unseen']}" if s["unseen"] else "")


MARKDOWN_ROWS = [  # label, stats key, how the cell is written
    ("watch (file written → patch starts)", "watch", "ms"),
    ("rustc", "rustc", "ms"),
    ("diff (objects, fingerprints, layouts)", "diff", "ms"),
    ("link (scope and relocation)", "link", "ms"),
    ("deliver", "deliver", "ms"),
    ("apply (entry jumps included)", "apply", "ms"),
    ("engine's own work (save → patched − rustc)", "save -> patched - rustc", "ms"),
    ("**save → patched**", "save -> patched", "bold"),
    ("**save → new code ran**", "save -> new code ran", "bold"),
    ("units linked", "units linked", "units"),
    ("entry jumps written", "entry jumps written", "count"),
    ("strict safe points: link", "link (strict safe points)", "ms"),
    ("strict safe points: apply", "apply (strict safe points)", "ms"),
    ("strict safe points: save → patched", "save -> patched (strict safe points)", "ms"),
    ("strict safe points: save → new code ran", "save -> new code ran (strict safe points)", "ms"),
    ("strict safe points: units linked", "units linked (strict safe points)", "units"),
    ("no debug info: save → patched", "save -> patched (no debug info)", "ms"),
    (
        "save → patched ÷ the same without debug info",
        "hotline save -> patched / no debug info",
        "ratio",
    ),
    ("bare rustc", "bare rustc", "ms"),
    ("cargo build + restart → new code ran", "cargo build + restart", "ms"),
    (
        "cargo build + restart ÷ hotline (new code ran)",
        "cargo build + restart / hotline (save -> new code ran)",
        "ratio",
    ),
    ("hotline save → patched ÷ bare rustc", "hotline save -> patched / bare rustc", "ratio"),
]


def markdown(data: dict) -> str:
    """The README's table from a results file."""
    apps = data["apps"]
    crates = {"axum-server": " (42 crates)", "web-service": " (105 crates)"}
    lines = [
        "| median ms (min–max) | " + " | ".join(f"{a}{crates.get(a, '')}" for a in apps) + " |",
        "|---" + "|---:" * len(apps) + "|",
    ]
    for label, key, kind in MARKDOWN_ROWS:
        cells = []
        for r in apps.values():
            s = r["paired ratios"][key] if kind == "ratio" else r["stats"][key]
            if not s["n"]:
                cells.append(f"never ({s['unseen']} of {s['unseen']} edits)")
            elif kind == "ratio":
                cells.append(f"{s['median']:.2f}× ({s['min']:.2f}–{s['max']:.2f})")
            elif kind == "units":
                cells.append(f"{s['median']:.0f} of {r['units total']} ({s['min']:.0f}–{s['max']:.0f})")
            elif kind == "count":
                cells.append(f"{s['median']:g} ({s['min']:g}–{s['max']:g})")
            elif kind == "bold":
                cell = _ms(s)
                cells.append(f"**{cell.split(' ', 1)[0]}** {cell.split(' ', 1)[1]}")
            else:
                cells.append(_ms(s))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_metadata(**extra: object) -> dict:
    """What a results file says about its run: machine, toolchain, commit, command, start and
    load; `extra` adds the bench's own settings before the load average."""
    rustc = subprocess.run(["rustc", "-V"], capture_output=True, text=True).stdout.strip()
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}, "
        f"python {platform.python_version()}, {rustc}",
        "commit": git_commit(),
        "command": shlex.join(["python", *sys.argv]),
        "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        **extra,
        "load average at the start (1, 5, 15 min)": os.getloadavg(),
    }


def git_commit() -> str:
    """HEAD, with `-dirty` when the work tree differs from it (read-only: no index refresh)."""
    git = ["git", "--no-optional-locks", "-C", str(REPO)]
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    status = subprocess.run([*git, "status", "--porcelain"], capture_output=True, text=True).stdout
    return head + ("-dirty" if status.strip() else "")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--app", nargs="+", default=EXAMPLES, choices=sorted(APPS))
    parser.add_argument("--edits", type=int, default=15, help="edits per app (the first is a warm-up)")
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path.home() / ".cache" / "hotline-bench",
        help="build directories kept between runs (dependencies are compiled once)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seeds the arms' order per edit")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--markdown", type=Path, help="only print the README's table from this results file")
    args = parser.parse_args()
    if args.markdown:
        print(markdown(json.loads(args.markdown.read_text())))
        return
    if args.edits < 3:
        parser.error("--edits must be at least 3: a warm-up and two measured edits")
    meta = run_metadata(**{"poll ms": POLL_MS, "new code wait s": NEW_CODE_WAIT_S, "order seed": args.seed})
    began = time.perf_counter()
    results = {}
    for app in args.app:
        with tempfile.TemporaryDirectory(prefix="hotline-bench-") as tmp:
            results[app] = bench_app(app, args.edits, args.cache, Path(tmp), args.seed)
    meta["duration s"] = round(time.perf_counter() - began, 1)
    meta["load average at the end (1, 5, 15 min)"] = os.getloadavg()
    print_table(results, meta)
    print(f"took {meta['duration s']:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({**meta, "apps": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
