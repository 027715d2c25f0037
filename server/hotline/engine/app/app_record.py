"""The app an engine launched, kept on disk so the next engine can re-attach to it or stop it.

An app outlives an engine that dies or is restarted (an editor's window reload, a killed
`hotline run`): its runtime keeps trying to reconnect. The record says which process it is
(pid and start time: a pid alone may have been reused), how to reach it (the channel's
socket and token), and what the engine must know to patch it further (`handover.py`). It is
private to the user (mode 0600), as the channel's token is.

Linux reads start times from /proc and waits for a process it did not start through a
pidfd; other platforms would keep this file's interface.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

VERSION = 2


@dataclass
class AppRecord:
    app_pid: int
    app_start: str
    build_id: str
    executable: str
    runtime: str
    socket: str
    token: str
    debug_dir: str
    output: dict[str, str] | None  # stream -> file, when the engine captures the app's output
    build_key: dict  # what the fat build was made with: binary, features, profile, linker
    manifests: dict[str, str | None]  # Cargo.toml, Cargo.lock, build.rs -> digest of their text
    seq: int = 0  # patches applied
    region_next: int = 0
    crates: dict[str, dict] = field(default_factory=dict)  # name -> {folder, compiled_at}
    app_args: list[str] = field(default_factory=list)
    version: int = VERSION


def start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot, or None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # the name in parentheses may hold spaces
    return None if fields[0] == "Z" else fields[19]  # state, then field 22 of the file


#: `PF_EXITING` in the flags of /proc/PID/stat: the process is in the kernel's exit path.
PF_EXITING = 0x4


def exiting(pid: int) -> bool:
    """The process is gone, a zombie, or on its way out: its threads have begun to exit, so
    its descriptors (its end of the patch channel) are being closed. Read from /proc, not
    from `Popen.poll()`, which says None (unknown) while another thread waits for it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    fields = stat.rsplit(")", 1)[1].split()
    return fields[0] in ("Z", "X", "x") or bool(int(fields[6]) & PF_EXITING)


def write(path: Path, record: AppRecord) -> None:
    """Replaces the record atomically: a reader sees the old one or the new one, whole."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(asdict(record), f)
    tmp.replace(path)


def read(path: Path) -> tuple[AppRecord | None, tuple[int, str | None] | None]:
    """(the record, or None if missing or unusable; the app's (pid, start) whenever named)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None, None
    if not isinstance(data, dict):
        return None, None
    app = (data.get("app_pid"), data.get("app_start")) if "app_pid" in data else None
    if isinstance(data.get("app"), list) and len(data["app"]) == 2:  # written by Hotline 0.x
        app = tuple(data["app"])
    if not (app and isinstance(app[0], int)):
        app = None
    try:
        record = AppRecord(**data) if data.get("version") == VERSION else None
    except TypeError:
        record = None
    return record, app  # type: ignore[return-value]


def clear(path: Path) -> None:
    path.unlink(missing_ok=True)


def is_alive(pid: int, start: str | None) -> bool:
    return start is not None and start_time(pid) == start


def stop(pid: int, start: str | None) -> bool:
    """Stops that process (SIGTERM, SIGKILL after 5 s); False if it was gone already."""
    if not is_alive(pid, start):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while is_alive(pid, start):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            deadline = float("inf")
        time.sleep(0.02)
    return True


class AdoptedProcess:
    """An app this engine did not start, with the subset of `subprocess.Popen` the session
    uses. Its exit status belongs to its parent: `wait()` returns None."""

    def __init__(self, pid: int, start: str) -> None:
        self._fd = os.pidfd_open(pid)
        if start_time(pid) != start:  # the pid was reused before the pidfd pinned it
            os.close(self._fd)
            raise ProcessLookupError(pid)
        self.pid = pid
        self._exited = False

    def poll(self) -> int | None:
        """None while it runs; 0 once it has exited (the real status is unknown here)."""
        if not self._exited:
            readable, _, _ = select.select([self._fd], [], [], 0)
            self._exited = bool(readable)
        return 0 if self._exited else None

    def wait(self, timeout: float | None = None) -> None:
        readable, _, _ = select.select([self._fd], [], [], timeout)
        if not readable:
            raise subprocess.TimeoutExpired(str(self.pid), timeout or 0)
        self._exited = True

    def terminate(self) -> None:
        if self.poll() is None:
            signal.pidfd_send_signal(self._fd, signal.SIGTERM)

    def kill(self) -> None:
        if self.poll() is None:
            signal.pidfd_send_signal(self._fd, signal.SIGKILL)
