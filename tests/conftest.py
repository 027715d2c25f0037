"""Shared helpers: copies of the bundled apps, and a live app driven by a real Session."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import pytest_lsp
from hotline.engine import schemas
from hotline.engine.session import Session
from hotline.examples import copy_app
from pytest_lsp import ClientServerConfig, LanguageClient

#: Events that fail a test at teardown unless it said it expects them (`expect`).
UNEXPECTED = ("engine-error", "debug-info-failed")


def save_file(path: Path, text: str) -> None:
    """Writes `text` to `path` in one atomic save, as editors save: a watcher never sees a
    half-written file."""
    temp = path.with_name(path.name + ".saving")
    temp.write_text(text)
    temp.replace(path)


def edit_file(path: Path, old: str, new: str, *more: str) -> None:
    """Replaces old with new (and each further pair in `more`) in one atomic save."""
    text = path.read_text()
    for before, after in [(old, new), *zip(more[::2], more[1::2], strict=True)]:
        assert before in text, f"{before!r} not in {path}"
        text = text.replace(before, after, 1)
    save_file(path, text)


def alive(pid: int) -> bool:
    """The process runs (a zombie nobody waited for does not)."""
    try:
        state = Path(f"/proc/{pid}/status").read_text().split("State:", 1)[1].split("\n", 1)[0]
    except (FileNotFoundError, IndexError):
        return False
    return "zombie" not in state


def _unexpected(events: list[dict], expected: set[str]) -> list[dict]:
    return [e for e in events if e["event"] in UNEXPECTED and e["event"] not in expected]


class LiveApp:
    """A Session plus everything it reported, with waits that fail loudly on timeout."""

    def __init__(self, crate: Path, app_args: list[str] | None = None, entry_jumps: bool = True) -> None:
        self.crate = crate
        self.events: list[dict] = []
        self.lines: list[str] = []
        self.schema_problems: list[str] = []  # events that break schemas/events.schema.json
        self.expected: set[str] = set()  # UNEXPECTED events this test provokes
        self._cv = threading.Condition()
        self.session = Session(crate, self._on_event, app_args=app_args, entry_jumps=entry_jumps)

    def _on_event(self, e: dict) -> None:
        problems = schemas.problems("events", e)
        with self._cv:
            self.schema_problems += [f"{p} in {e['event']}" for p in problems]
            self.events.append(e)
            if e["event"] == "app-output" and e["stream"] == "stdout":
                self.lines.append(e["line"])
            self._cv.notify_all()

    def wait_line(self, pred: Callable[[str], bool], timeout: float = 10.0, after: int = 0) -> str:
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                for line in self.lines[after:]:
                    if pred(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no matching line in {timeout}s; last lines: {self.lines[-5:]}")
                self._cv.wait(left)

    def wait_lines(
        self, pred: Callable[[str], bool], count: int, timeout: float = 10.0, after: int = 0
    ) -> list[str]:
        """The first `count` lines (from `after` on) that match `pred`, in the order printed."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                found = [line for line in self.lines[after:] if pred(line)]
                if len(found) >= count:
                    return found[:count]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{len(found)} of {count} matching lines in {timeout}s; last lines: {self.lines[-5:]}"
                    )
                self._cv.wait(left)

    def wait_event(self, kind: str, timeout: float) -> dict:
        """The first `kind` event reported."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                found = [e for e in self.events if e["event"] == kind]
                if found:
                    return found[0]
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [e["event"] for e in self.events if e["event"] != "app-output"]
                    raise AssertionError(f"no {kind} event in {timeout}s; events: {seen}")
                self._cv.wait(left)

    def exits(self) -> list[dict]:
        """`app-exited` events: a crash (or any exit) of the app while the test ran."""
        with self._cv:
            return [e for e in self.events if e["event"] == "app-exited"]

    def mark(self) -> int:
        with self._cv:
            return len(self.lines)

    def edit(self, old: str, new: str, file: str = "src/main.rs") -> None:
        edit_file(self.crate / file, old, new)

    def expect(self, *events: str) -> None:
        """This test provokes these UNEXPECTED events: teardown lets them pass."""
        self.expected.update(events)

    def patch(self, expect: str = "patched") -> dict:
        outcome = self.session.patch()
        assert outcome.kind == expect, outcome.event
        return outcome.event


@pytest.fixture
def live_app(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., LiveApp]]:
    """Starts bundled apps under a Session. Parametrized indirectly with a bool, it sets the
    sessions' default patch mode: entry jumps (True, the default) or safe points only (False)."""
    apps: list[LiveApp] = []
    default_entry_jumps: bool = getattr(request, "param", True)

    def start(
        name: str,
        app_args: list[str] | None = None,
        member: str = "",
        entry_jumps: bool | None = None,
        prepare: Callable[[Path], None] | None = None,
    ) -> LiveApp:
        """`prepare(crate_dir)` edits the copy before its first build (a profile, say)."""
        jumps = default_entry_jumps if entry_jumps is None else entry_jumps
        crate = copy_app(name, tmp_path) / member
        if prepare is not None:
            prepare(crate)
        app = LiveApp(crate, app_args, jumps)
        app.session.start()
        apps.append(app)
        return app

    yield start
    _stop_all([app.session.stop for app in apps])
    assert not [p for app in apps for p in app.schema_problems]
    unexpected = [e for app in apps for e in _unexpected(app.events, app.expected)]
    assert not unexpected, f"unexpected events: {unexpected}"


def _stop_all(stops: list[Callable[[], None]]) -> None:
    """Calls every stop, even after one failed (timed out, say); then fails with the first."""
    errors: list[BaseException] = []
    for stop in stops:
        try:
            stop()
        except Exception as e:
            errors.append(e)
    if errors:
        raise errors[0]


def _apps_under(folder: Path) -> list[int]:
    """Pids of processes whose executable lies under `folder` (apps a test launched), and of
    the reapers a language server left for them (`handover.spawn_reaper`)."""
    out = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                exe = Path(os.readlink(proc / "exe"))
            except OSError:
                continue
            if exe.is_relative_to(folder) or int(proc.name) in reapers_under(folder, [proc]):
                out.append(int(proc.name))
    return out


def reapers_under(folder: Path, procs: list[Path] | None = None) -> list[int]:
    """Pids of reaper processes (`python -m hotline.engine.app.handover TARGET GRACE`) whose
    target folder lies under `folder`."""
    out = []
    for proc in procs if procs is not None else Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"hotline.engine.app.handover" in args and len(args) > 3:
            target = Path(os.fsdecode(args[args.index(b"hotline.engine.app.handover") + 1]))
            if target.is_relative_to(folder):
                out.append(int(proc.name))
    return out


@pytest.fixture(autouse=True)
def no_app_left_running(tmp_path: Path) -> Iterator[None]:
    """Apps outlive their engines by design (a language server leaves its app to the next
    one, and a reaper stops it 10 s later): once a test is over, its apps are stopped, so
    they do not compete with the next tests for the CPU."""
    yield
    for pid in _apps_under(tmp_path):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="session", autouse=True)
def no_app_left_running_after_the_suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    yield
    for pid in _apps_under(tmp_path_factory.getbasetemp()):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


#: Test modules that share state with other modules: under `pytest -n N --dist loadgroup`
#: (scripts/test.sh) each group runs on one worker, one test after another; every other
#: module is a group of its own (its tests share built apps and module fixtures).
SHARED_GROUPS: dict[str, str] = {
    # The crates.io apps build into one cache outside the clone (test_real_world.CACHE):
    # Bevy's target directory, and with it its engine lock, is test_bevy's and
    # test_bevy_lsp's; all of them wait on cargo's registry and build-directory locks.
    "test_real_world.py": "crates-io",
    "test_bevy.py": "crates-io",
    "test_bevy_lsp.py": "crates-io",
    # code-server + headless Chromium, and Neovim: each the heaviest of front ends.
    "vscode/test_vscode_e2e.py": "editors",
    "nvim/test_nvim.py": "editors",
    "nvim/test_nvim_live_frames.py": "editors",
    "nvim/test_nvim_receipts.py": "editors",
    # Tests that assert on how long something took (a quiet stop, a speculative build's
    # phases, a receipt's first read).
    "test_quiet_stop.py": "timing",
    "test_speculative.py": "timing",
    "lsp/test_lsp_speculative.py": "timing",
    "test_receipts.py": "timing",
}

#: Seconds each group takes on two cores under `-n 3` (from `--durations`): workers take
#: the groups longest first, so that no long group starts last and leaves the other
#: workers idle at the end. Groups not named here follow, in collection order.
GROUP_SECONDS: dict[str, float] = {
    "timing": 250,
    "editors": 180,
    "crates-io": 105,  # on a warm cache; on a cold one (a machine's first run) minutes more
    "test_patch_semantics.py": 92,
    "test_faults.py": 83,
    "lsp/test_lsp.py": 55,
    "test_project_shapes.py": 53,
    "test_receipt_corpus.py": 37,
    "test_live_frames.py": 34,
    "test_entry_jumps.py": 33,
    "lsp/test_lsp_handover.py": 32,
    "lsp/test_lsp_parity.py": 31,
}


@pytest.hookimpl(optionalhook=True)  # no xdist (-p no:xdist): no such hook
def pytest_xdist_make_scheduler(config: pytest.Config, log):  # type: ignore[no-untyped-def]
    """`--dist loadgroup` with the groups of SHARED_GROUPS, handed out longest first.

    The groups are told by the test's module (in its node id) rather than by
    `xdist_group` marks: pytest 9 names a test by `Item._id`, so the `@group` suffix xdist
    3.8 writes into `Item._nodeid` never reaches the scheduler."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    tests = Path(__file__).parent.relative_to(config.rootpath).as_posix() + "/"

    class LongestFirst(LoadGroupScheduling):
        ordered = False

        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0].removeprefix(tests)
            return SHARED_GROUPS.get(module, module)

        def _assign_work_unit(self, node) -> None:  # type: ignore[no-untyped-def]
            # The base class queues the groups (by test count) before it hands out the
            # first: reorder the queue then, once.
            if not self.ordered:
                self.ordered = True
                for group in sorted(self.workqueue, key=lambda g: -GROUP_SECONDS.get(g, 0.0)):
                    self.workqueue.move_to_end(group)
            super()._assign_work_unit(node)

    return LongestFirst(config, log)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator:
    """No front end ever shows a Python traceback (issue 14): whatever a test's processes
    wrote to its stdout and stderr (the CLI, the language server, the apps) is checked, and
    a test whose output holds one fails."""
    report = yield
    if report.when == "teardown" and report.passed:
        output = "".join(text for _, _, text in item._report_sections)
        if "Traceback (most recent call last)" in output:
            report.outcome = "failed"
            report.longrepr = f"a Python traceback was printed while {item.nodeid} ran:\n{output[-4000:]}"
    return report


def gone(pid: int, timeout: float = 10.0) -> bool:
    """The process has exited (and is reaped, or a zombie nobody waits for)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/status").read_text().split("State:", 1)[1].split("\n", 1)[0]
        except (FileNotFoundError, IndexError):
            return True
        if "zombie" in state:
            return True
        time.sleep(0.05)
    return False


def fields(line: str) -> dict[str, str]:
    """`a=1 b=x` -> {'a': '1', 'b': 'x'}."""
    return dict(part.split("=", 1) for part in line.split() if "=" in part)


class HotlineRunProcess:
    """`hotline run` in a subprocess (its own process group), read event by event. With
    `target_dir=None` the engine picks its own (the crate's `target/hotline`).

    Reader threads drain stdout and stderr, so `until` enforces its deadline even when the
    engine prints nothing, and a full stderr pipe never blocks the engine. With `--json`
    every event is checked against schemas/events.schema.json (`schema_problems`)."""

    def __init__(
        self, crate: Path, target_dir: Path | None, args: list[str] | None = None, json_events: bool = True
    ):
        command = [sys.executable, "-m", "hotline", "run", str(crate), *(["--json"] if json_events else [])]
        self.proc = subprocess.Popen(
            [*command, *(args or [])],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            env=_without(os.environ, "HOTLINE_TARGET_DIR")
            | ({"HOTLINE_TARGET_DIR": str(target_dir)} if target_dir is not None else {}),
        )
        self.json_events = json_events
        self.events: list[dict] = []
        self.stdout: list[str] = []  # raw lines, for a run without --json
        self.stderr: list[str] = []
        self.schema_problems: list[str] = []
        self.expected: set[str] = set()  # UNEXPECTED events this test provokes
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._stderr_cv = threading.Condition()
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line)
        self._queue.put(None)  # end of output

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._stderr_cv:
                self.stderr.append(line.rstrip("\n"))
                self._stderr_cv.notify_all()

    def until(self, pred: Callable[[dict], bool], timeout: float = 90.0) -> dict:
        """The next event matching `pred`; fails after `timeout` seconds even if nothing is printed."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                line = self._queue.get(timeout=max(left, 0)) if left > 0 else self._queue.get_nowait()
            except queue.Empty:
                raise AssertionError(
                    f"not seen in {timeout}s; last events: {self.events[-5:]}; stderr: {self.stderr[-5:]}"
                ) from None
            if line is None:
                self._queue.put(None)  # later calls see the end too
                raise AssertionError(
                    f"hotline run ended (rc {self.proc.poll()}); last events: {self.events[-5:]}; "
                    f"stderr: {self.stderr[-5:]}"
                )
            self.stdout.append(line.rstrip("\n"))
            if not self.json_events:
                continue
            event = json.loads(line)
            self.schema_problems += [f"{p} in {event}" for p in schemas.problems("events", event)]
            self.events.append(event)
            if pred(event):
                return event

    def until_stderr(self, pred: Callable[[str], bool], timeout: float = 90.0, after: int = 0) -> str:
        """The first stderr line (from `after` on) matching `pred`."""
        deadline = time.monotonic() + timeout
        with self._stderr_cv:
            while True:
                for line in self.stderr[after:]:
                    if pred(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no matching stderr line in {timeout}s; last: {self.stderr[-5:]}")
                self._stderr_cv.wait(left)

    def drain(self) -> None:
        """Reads (and schema-checks) whatever was printed so far, without waiting."""
        with contextlib.suppress(AssertionError):
            self.until(lambda e: False, timeout=0)

    def watching(self, timeout: float = 180.0) -> dict:
        """Waits until the file watcher is armed (or returns at once if an earlier `until`
        passed its event): from then on every save is seen."""
        seen = [e for e in self.events if e["event"] == "watching"]
        return seen[0] if seen else self.until(lambda e: e["event"] == "watching", timeout)

    def expect(self, *events: str) -> None:
        """This test provokes these UNEXPECTED events: teardown lets them pass."""
        self.expected.update(events)

    def stop(self) -> None:
        """Ctrl-C; a run that has not stopped 20 s later is killed, and the test fails."""
        if self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGINT)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            raise AssertionError(
                f"hotline run (pid {self.proc.pid}) did not stop within 20 s of Ctrl-C"
            ) from None


@pytest.fixture
def hotline_run(tmp_path: Path) -> Iterator[Callable[..., HotlineRunProcess]]:
    """Starts `hotline run --json` (or, with `json_events=False`, the human-readable form);
    at the end stops each, and fails if any event broke schemas/events.schema.json."""
    runs: list[HotlineRunProcess] = []

    def start(
        crate: Path, args: list[str] | None = None, json_events: bool = True, own_target_dir: bool = False
    ) -> HotlineRunProcess:
        """`own_target_dir`: let the engine pick its target directory, as a user's run does."""
        target_dir = None if own_target_dir else tmp_path / "target"
        runs.append(HotlineRunProcess(crate, target_dir, args, json_events))
        return runs[-1]

    yield start
    _stop_all([run.stop for run in runs])
    for run in runs:
        run.drain()
    assert not [p for run in runs for p in run.schema_problems]
    unexpected = [e for run in runs for e in _unexpected(run.events, run.expected)]
    assert not unexpected, f"unexpected events: {unexpected}"
    # No front end ever shows a Python traceback (issue 14): errors are messages and events.
    assert not [line for run in runs for line in run.stderr + run.stdout if "Traceback" in line]


def require_privilege(what: str) -> None:
    """A test that needs root powers (mount, say) and cannot get them: under CI (CI set and
    not "false"/"0", or HOTLINE_REQUIRE_PRIVILEGES=1) that fails the test, elsewhere it skips."""
    required = os.environ.get("CI", "").lower() not in ("", "0", "false")
    if required or os.environ.get("HOTLINE_REQUIRE_PRIVILEGES") == "1":
        pytest.fail(f"{what}: this test needs root (mount) rights, which CI must grant", pytrace=False)
    pytest.skip(f"{what} (needs root)")


def _without(env: os._Environ[str] | dict[str, str], name: str) -> dict[str, str]:
    return {k: v for k, v in env.items() if k != name}


#: `hotline lsp` on stdio, as the editors start it.
LSP_SERVER = ClientServerConfig(server_command=[sys.executable, "-m", "hotline.lsp"])


@pytest_lsp.fixture(config=LSP_SERVER)
async def client(lsp_client: LanguageClient):
    """A real `hotline lsp` and a client that collects what it reports (`test_lsp.collect`);
    shut down at the end unless the test did so itself (`shut_down`)."""
    from test_lsp import collect  # tests/lsp/, on the path for the tests that use this

    collect(lsp_client)
    yield
    if not getattr(lsp_client, "shut_down", False):
        await asyncio.wait_for(lsp_client.shutdown_session(), 15)
