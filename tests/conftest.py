"""Shared helpers: copies of the bundled apps, and a live app driven by a real Session."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hotline.engine import schemas
from hotline.engine.session import Session
from hotline.examples import copy_app


class LiveApp:
    """A Session plus everything it reported, with waits that fail loudly on timeout."""

    def __init__(self, crate: Path, app_args: list[str] | None = None, entry_jumps: bool = True) -> None:
        self.crate = crate
        self.events: list[dict] = []
        self.lines: list[str] = []
        self.schema_problems: list[str] = []  # events that break schemas/events.schema.json
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

    def exits(self) -> list[dict]:
        """`app-exited` events: a crash (or any exit) of the app while the test ran."""
        with self._cv:
            return [e for e in self.events if e["event"] == "app-exited"]

    def mark(self) -> int:
        with self._cv:
            return len(self.lines)

    def edit(self, old: str, new: str, file: str = "src/main.rs") -> None:
        path = self.crate / file
        text = path.read_text()
        assert old in text, f"{old!r} not in {file}"
        temp = path.with_suffix(".rs.saving")
        temp.write_text(text.replace(old, new, 1))
        temp.replace(path)  # atomically, as editors save

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
    for app in apps:
        app.session.stop()
    assert not [p for app in apps for p in app.schema_problems]


def fields(line: str) -> dict[str, str]:
    """`a=1 b=x` -> {'a': '1', 'b': 'x'}."""
    return dict(part.split("=", 1) for part in line.split() if "=" in part)


class HotlineRunProcess:
    """`hotline run --json` in a subprocess, read event by event."""

    def __init__(self, crate: Path, target_dir: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hotline", "run", str(crate), "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            env=os.environ | {"HOTLINE_TARGET_DIR": str(target_dir)},
        )
        self.events: list[dict] = []

    def until(self, pred: Callable[[dict], bool], timeout: float = 90.0) -> dict:
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.events.append(json.loads(line))
            if pred(self.events[-1]):
                return self.events[-1]
        raise AssertionError(f"not seen; last events: {self.events[-5:]}")

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGINT)
        self.proc.wait(timeout=20)


@pytest.fixture
def hotline_run(tmp_path: Path) -> Iterator[Callable[[Path], HotlineRunProcess]]:
    runs: list[HotlineRunProcess] = []

    def start(crate: Path) -> HotlineRunProcess:
        runs.append(HotlineRunProcess(crate, tmp_path / "target"))
        return runs[-1]

    yield start
    for run in runs:
        run.stop()
