"""Watching a running app: its output lines become `app-output` events, its end `app-exited`."""

from __future__ import annotations

import subprocess

from hotline.engine.app.app_output import Follower, OutputFiles
from hotline.engine.app.app_record import AdoptedProcess
from hotline.engine.session_state import Event, SessionState


def follow_output(
    session: SessionState, files: OutputFiles, proc: subprocess.Popen | AdoptedProcess, from_end: bool = False
) -> Follower:
    """`app-output` events for each line the app writes to its output files."""
    follower = Follower(
        files,
        lambda stream, line: session.on_event({"event": "app-output", "stream": stream, "line": line}),
        lambda: proc.poll() is None,
        from_end,
    )
    if session.running is not None and session.running.proc is proc:
        session.running.output = follower
    return follower


def watch_exit(session: SessionState, proc: subprocess.Popen | AdoptedProcess) -> None:
    """`app-exited` when the app ends, after its last output lines."""
    code = proc.wait()
    running = session.running
    if running is not None and running.proc is proc and running.output is not None:
        running.output.join()
    event: Event = {
        "event": "app-exited",
        "pid": proc.pid,
        "code": code if code is None or code >= 0 else None,
    }
    if code is not None and code < 0:
        event["signal"] = -code
    if (
        code is not None and code < 0 and session.last_patched
    ):  # a crash after a patch: name what the patch changed
        event["last_patch"] = {k: session.last_patched[k] for k in ("seq", "functions")}
    session.on_event(event)
