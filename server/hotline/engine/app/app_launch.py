"""Launching the app attached to a fresh patch channel, with the runtime linked or preloaded,
and the build directory's engine lock that makes this engine the app's only one."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

from hotline.engine.analyse.entry_jumps import EntryJumps
from hotline.engine.app import app_record, app_watch, handover
from hotline.engine.app.app_output import OutputFiles
from hotline.engine.app.app_record import AppRecord
from hotline.engine.app.channel import ChannelError, PatchChannel
from hotline.engine.app.preload import PreloadError, preload_env, preload_library
from hotline.engine.app.running_app import RunningApp
from hotline.engine.app.thread_stop import stop_mode
from hotline.engine.errors import EngineBusy, HotlineError
from hotline.engine.link.executable import ANCHOR
from hotline.engine.link.patch_link import ProcessSymbols
from hotline.engine.session_state import SessionState


def launch(session: SessionState, executable: Path) -> int:
    """Starts the app attached to a fresh patch channel; returns its pid."""
    assert session.exe is not None
    runtime, runtime_env = _runtime_env(session)
    debug_dir = session.target_dir / "patches-debug" / session.build_id
    channel = PatchChannel(session.build_id, debug_dir=debug_dir)
    # The app writes to files, not pipes: it outlives this engine (app_output.py).
    files = OutputFiles(session.target_dir / "output", session.build_id) if session.capture_output else None
    fds = files.create() if files else {}
    # On this process's terminal the app starts only once `app-started` is out: a line
    # printed after a full-screen app's first frame would scroll its first row away.
    gate = None if files else os.pipe()
    command = [str(executable), *session.app_args]
    env = os.environ | channel.env() | runtime_env
    if gate is not None:
        command, env = _gated(command, runtime_env), os.environ | channel.env()
    try:
        proc = subprocess.Popen(
            command,
            cwd=session.crate_dir,
            env=env,
            stdout=fds.get("stdout"),
            stderr=fds.get("stderr"),
            stdin=gate[0] if gate else subprocess.DEVNULL,
        )
    except BaseException:
        if gate is not None:
            os.close(gate[1])
        raise
    finally:
        for fd in [*fds.values(), *(gate[:1] if gate else ())]:
            os.close(fd)
    try:  # from here until it is recorded as running, any interruption stops the app
        record = AppRecord(
            app_pid=proc.pid,
            app_start=app_record.start_time(proc.pid) or "",
            build_id=session.build_id,
            executable=str(executable),
            runtime=runtime,
            socket=str(channel.path),
            token=channel.token,
            debug_dir=str(debug_dir),
            output={k: str(v) for k, v in files.paths.items()} if files else None,
            build_key=session.build_key,
            manifests=handover.manifests(session.restart_files),
            app_args=session.app_args,
        )
        app_record.write(session.app_record, record)
        # Announced before its output is forwarded: no `app-output` of this app precedes it.
        session.on_event(
            {
                "event": "app-started",
                "pid": proc.pid,
                "executable": str(executable),
                "runtime": runtime,
                "stop": stop_mode(proc.pid),
            }
        )
        if gate is not None:
            _open(gate[1])
            gate = None
        follower = app_watch.follow_output(session, files, proc) if files else None
        threading.Thread(target=app_watch.watch_exit, args=(session, proc), daemon=True).start()
        hello = channel.accept(proc.pid, session.connect_timeout, lambda: proc.poll() is None)
        if hello.mode != runtime:
            raise ChannelError(f"the app's runtime says it is {hello.mode}, but it should be {runtime}")
        slide = hello.slide(session.exe.address(ANCHOR))
    except BaseException as e:  # a channel error, or Ctrl-C / `kill` while waiting for it
        if gate is not None:
            os.close(gate[1])  # the gate sees end of file: the app never starts
        channel.close()
        proc.kill()  # an app we cannot patch is not left running behind the user's back
        proc.wait()
        app_record.clear(session.app_record)
        if isinstance(e, ChannelError):
            raise HotlineError(f"cannot attach to the app: {e}; it was stopped") from e
        raise
    prior = ProcessSymbols()
    session.pending.clear()  # a new process: nothing of an earlier one is pending
    session.running = RunningApp(
        proc,
        channel,
        slide=slide,
        region_next=hello.region_start,
        region_end=hello.region_start + hello.region_size,
        prior=prior,
        jumps=EntryJumps(session.exe, slide, prior),
        runtime=runtime,
        record=record,
        output=follower,
    )
    handover.save(session)
    return proc.pid


#: Waits for a line on its stdin (the gate), then execs the app (the same process: its pid,
#: its start time) with stdin /dev/null and the runtime's variables, which the shell itself
#: must not have (`LD_PRELOAD`); exits without starting it at end of file (the engine
#: stopped first).
_GATE = 'IFS= read -r _ || exit 125; exec </dev/null env "$@"'


def _gated(command: list[str], runtime_env: dict[str, str]) -> list[str]:
    """`command` behind a gate that `_open` opens."""
    assignments = [f"{k}={v}" for k, v in runtime_env.items()]
    return ["/bin/sh", "-c", _GATE, "hotline-gate", "--", *assignments, *command]


def _open(fd: int) -> None:
    """Lets the gated app start (`_gated`)."""
    try:
        os.write(fd, b"\n")
    except OSError:
        pass  # it is gone already: its exit is the news
    finally:
        os.close(fd)


def _runtime_env(session: SessionState) -> tuple[str, dict[str, str]]:
    """How the runtime gets into the app: "linked" (the app depends on the runtime crate:
    nothing to add) or "injected" (preloaded, `preload.py`), and the variables for that."""
    assert session.exe is not None
    if session.exe.links_runtime:
        return "linked", {}  # never preloaded too: one runtime, one connection
    if not session.exe.dynamic:
        raise HotlineError(
            f"{session.exe.path.name} is statically linked (musl?), so the runtime cannot be preloaded "
            "into it: build for a glibc target, or make the app depend on the runtime crate "
            '(README, "Use")'
        )
    try:
        library = preload_library(session.on_event)
    except PreloadError as e:
        raise HotlineError(str(e)) from e
    return "injected", preload_env(library, os.environ.get("LD_PRELOAD"))


def own_crate(session: SessionState) -> None:
    """Takes the build directory's engine lock, or says which engine has it."""
    holder = session.lock.acquire()
    if holder is None:
        return
    _, app = app_record.read(session.app_record)
    app_pid = app[0] if app and app_record.is_alive(*app) else None
    running = f" (its app is pid {app_pid})" if app_pid else ""
    raise EngineBusy(
        f"{session.bin_name} is already under another Hotline, pid {holder}{running}: stop that one "
        f"first (Ctrl-C in its terminal, or the editor's Hotline: Stop), or take it over",
        holder,
        app_pid,
    )
