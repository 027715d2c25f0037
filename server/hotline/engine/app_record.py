"""Which app an engine launched, kept on disk so the next engine can stop an orphan.

An app outlives an engine that is killed (it goes on unattached, by design), but a new
engine for the same app would then launch a second copy beside it, and a server's copy
would find its port taken. The record names the app and the engine by pid and start time
(a pid alone may have been reused); an app whose engine is gone is stopped before the
next launch. Linux reads both from /proc.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot, or None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # the name in parentheses may hold spaces
    return None if fields[0] == "Z" else fields[19]  # state, then field 22 of the file


def write(record: Path, app_pid: int) -> None:
    record.write_text(
        json.dumps(
            {
                "app": [app_pid, _start_time(app_pid)],
                "engine": [os.getpid(), _start_time(os.getpid())],
            }
        )
    )


def clear(record: Path) -> None:
    record.unlink(missing_ok=True)


def stop_orphan(record: Path) -> int | None:
    """Stops the recorded app if the engine that launched it is gone; returns its pid."""
    try:
        data = json.loads(record.read_text())
        (app, app_start), (engine, engine_start) = data["app"], data["engine"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if _start_time(engine) == engine_start:
        return None  # its engine is alive and still owns it
    clear(record)
    if app_start is None or _start_time(app) != app_start:
        return None  # gone already
    os.kill(app, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while _start_time(app) == app_start:
        if time.monotonic() > deadline:
            os.kill(app, signal.SIGKILL)
            deadline = float("inf")
        time.sleep(0.02)
    return app
