"""The quiet stop (issue 26): entry jumps are written with the app's threads held by ptrace
(`thread_stop.py`), which the app cannot observe: no system call fails with EINTR, a thread
that blocks every signal stops like any other, a SIGPROF handler at 1 kHz survives.

The `stop_matrix` app has one thread blocked in each system call that a signal handler
makes fail with EINTR; each prints `NAME v=VERSION eintr=COUNT` when either changes, and
`version()` is what the tests edit. The app has no safe point: the new code reaches every
thread through entry jumps only.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import LiveApp, alive
from hotline.engine.app import thread_stop

THREADS = [
    "tcp-read",
    "udp-recv",
    "unix-recv",
    "tcp-write",
    "epoll",
    "poll",
    "select",
    "nanosleep",
    "clock-nanosleep",
    "sigtimedwait",
    "futex",
    "accept",
    "pipe-read",
    "waitpid",
    "masked",  # blocks every signal
]
VERSION = "std::hint::black_box({})"


def latest(app: LiveApp) -> dict[str, tuple[int, int]]:
    """Each thread's last printed (version, EINTR count)."""
    out = {}
    for line in list(app.lines):
        name, _, rest = line.partition(" ")
        fields = dict(f.split("=", 1) for f in rest.split())
        if name in THREADS:
            out[name] = (int(fields["v"]), int(fields["eintr"]))
    return out


def patch_version(app: LiveApp, old: int, new: int) -> dict:
    app.edit(VERSION.format(old), VERSION.format(new))
    return app.patch()


@pytest.mark.slow
def test_fifty_patches_under_the_quiet_stop_cause_no_eintr_and_reach_every_thread(live_app):
    app = live_app("stop_matrix")
    for name in THREADS:
        app.wait_line(lambda s, n=name: s == f"{n} v=1 eintr=0", timeout=20)
    assert app.session.running.channel.stop_mode == "ptrace"
    applies = []
    for version in range(2, 52):
        event = patch_version(app, version - 1, version)
        assert event["entry_jumps"]["written"] >= 1, event
        assert event["entry_jumps"]["skipped"] == 0, event
        assert not [w for w in event["warnings"] if w["rule"] in ("HL1008", "HL1009")], event["warnings"]
        applies.append(event["phases"]["apply"])
    for name in THREADS:
        app.wait_line(lambda s, n=name: s.startswith(f"{n} v=51 "), timeout=10)
    assert not app.exits()
    counts = latest(app)
    assert counts == {name: (51, 0) for name in THREADS}, counts
    assert not [line for line in app.lines if "eintr=" in line and not line.endswith("eintr=0")]
    print(f"apply ms: median {statistics.median(applies):.2f}, max {max(applies):.2f}")


@pytest.mark.slow
def test_a_sigprof_handler_at_one_kilohertz_survives_two_hundred_patches(live_app):
    app = live_app("stop_matrix", app_args=["sigprof"])
    app.wait_line(lambda s: s == "busy v=1 profiled=true", timeout=20)
    for version in range(2, 202):
        event = patch_version(app, version - 1, version)
        assert event["entry_jumps"]["written"] >= 1, event
    app.wait_line(lambda s: s.startswith("busy v=201 "), timeout=10)
    assert not app.exits()


def without_quiet_stop(app: LiveApp) -> None:
    """Makes the app's channel use the runtime's signal stop, as when ptrace is unavailable."""
    channel = app.session.running.channel
    channel.quiet.close()
    channel.quiet, channel.stop_mode = None, "signal"


def test_an_app_that_resets_the_stop_signal_to_its_default_is_not_killed_by_the_signal_stop(live_app):
    app = live_app("stop_matrix", app_args=["reset"])
    app.wait_line(lambda s: s == "slow v=1", timeout=20)
    without_quiet_stop(app)
    for version in range(2, 7):
        event = patch_version(app, version - 1, version)
        assert event["entry_jumps"]["written"] >= 1, event
        app.wait_line(lambda s, v=version: s == f"slow v={v}", timeout=10)
    assert not app.exits()


GDB_SCRIPT = """\
set pagination off
handle SIG32 SIG33 SIG34 SIG35 SIG36 SIG37 SIG38 SIG39 SIG40 SIG41 SIG42 SIG43 nostop noprint pass
handle SIG44 SIG45 SIG46 SIG47 SIG48 SIG49 SIG50 SIG51 SIG52 SIG53 SIG54 SIG55 nostop noprint pass
handle SIG56 SIG57 SIG58 SIG59 SIG60 SIG61 SIG62 SIG63 SIG64 nostop noprint pass
break stop_matrix::version
commands
silent
continue
end
continue
"""


def test_with_gdb_attached_patches_apply_without_corruption_or_are_held_back_by_name(live_app, tmp_path):
    app = live_app("stop_matrix", app_args=["slow"])
    app.wait_line(lambda s: s == "slow v=1", timeout=20)
    script = tmp_path / "gdb.cmd"
    script.write_text(GDB_SCRIPT)
    pid = app.session.running.proc.pid
    gdb = subprocess.Popen(
        ["gdb", "-batch", "-nx", "-p", str(pid), "-x", str(script)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while thread_stop.QuietStop.unavailable(pid) is None:
            assert time.monotonic() < deadline, "gdb did not attach"
            time.sleep(0.1)
        time.sleep(1)  # the breakpoint is inserted once gdb continues
        for version in range(2, 5):
            event = patch_version(app, version - 1, version)
            held = [w for w in event["warnings"] if "a debugger is attached" in w["message"]]
            if held:
                # The executable's entry holds the breakpoint: its jump is held back. A patch's copy
                # is entered through its first-call preamble (receipts), so gdb's breakpoint after
                # the body's prologue is past that copy's jump, which is written.
                assert event["entry_jumps"]["skipped"] >= 1, event
                assert "stop_matrix::version" in held[0]["message"], held
            else:
                assert event["entry_jumps"]["written"] >= 1, event
                app.wait_line(lambda s, v=version: s == f"slow v={v}", timeout=10)
            print(f"patch {version}: {'held back' if held else 'written'} under gdb")
        assert alive(pid)
        assert gdb.poll() is None, gdb.communicate()[0]
    finally:
        gdb.send_signal(signal.SIGINT)
        try:
            gdb.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            gdb.kill()
            gdb.communicate()
    assert not app.exits()


def test_when_the_signal_stop_cannot_stop_a_masked_thread_the_patch_applies_with_hl1009_naming_it(live_app):
    """docs/rude-edits.md, HL1009: without ptrace, a thread that blocks every signal keeps
    the signal stop from holding the app; nothing is rewritten, the patch still applies,
    and the warning names the thread."""
    app = live_app("stop_matrix")
    app.wait_line(lambda s: s == "masked v=1 eintr=0", timeout=20)
    without_quiet_stop(app)
    event = patch_version(app, 1, 2)
    (warning,) = [w for w in event["warnings"] if w["rule"] == "HL1009"]
    assert "masked" in warning["message"], warning
    assert event["entry_jumps"]["written"] == 0, event
    time.sleep(0.5)
    assert latest(app)["masked"][0] == 1  # no entry jump, no safe point: the old code runs on
    assert not app.exits()


def test_jumps_a_failed_stop_could_not_write_land_at_a_later_stop_without_another_save(live_app):
    """Issue 25, shape 4: the jumps of a patch whose stop failed (HL1009) stay pending and
    are written at the next stop that holds the app (here the retry a moment later, once
    ptrace is back); `jumps-landed` says so and every thread ends on the new code."""
    app = live_app("stop_matrix")
    app.wait_line(lambda s: s == "masked v=1 eintr=0", timeout=20)
    without_quiet_stop(app)
    event = patch_version(app, 1, 2)
    assert [w for w in event["warnings"] if w["rule"] == "HL1009"], event["warnings"]
    assert event["entry_jumps"]["written"] == 0, event
    channel = app.session.running.channel
    channel.quiet, channel.stop_mode = thread_stop.QuietStop(app.session.running.proc.pid), "ptrace"
    deadline = time.monotonic() + 20
    while not [e for e in app.events if e["event"] == "jumps-landed"]:
        assert time.monotonic() < deadline, "the pending jumps never landed"
        time.sleep(0.1)
    (landed,) = [e for e in app.events if e["event"] == "jumps-landed"]
    assert "stop_matrix::version" in landed["functions"], landed
    for name in THREADS:
        app.wait_line(lambda s, n=name: s.startswith(f"{n} v=2 "), timeout=10)
    assert not app.exits()


#: One thread blocked in recvfrom on a UDP socket with SO_RCVTIMEO: a call that fails with
#: EINTR, never -ERESTART*, when a signal cuts it short (signal(7)).
UDP_RECV = """
import socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 60, 0))
s.recv(64)
"""
RECVFROM = 45


def _in_syscall(pid: int, nr: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}/syscall").read_text().split()[0] != str(nr):
        assert time.monotonic() < deadline, f"pid {pid} never blocked in system call {nr}"
        time.sleep(0.01)


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


@pytest.mark.parametrize("when", ["while-seized", "while-stopped"])
def test_an_ignored_signal_the_stop_let_in_does_not_make_a_timed_recv_fail_with_eintr(when):
    """SIGCHLD (ignored by default) is dropped when it is sent, unless the thread is traced:
    during the quiet stop it is queued and cuts a recv with a timeout short with EINTR, which
    the kernel never restarts. The helper restarts it, whether the signal arrived before the
    stop (a signal-delivery stop of SIGCHLD) or while the thread was stopped (pending). Seen
    as `udp-recv eintr=1` in stop_matrix, whose waitpid thread's children exit every 200 ms."""
    app = subprocess.Popen([sys.executable, "-c", UDP_RECV])
    try:
        _in_syscall(app.pid, RECVFROM)
        tracer = thread_stop.Tracer(app.pid)
        if when == "while-seized":
            tracer._ptrace(thread_stop.PTRACE_SEIZE, app.pid)
            tracer.held[app.pid] = 0
            os.kill(app.pid, signal.SIGCHLD)
        else:
            assert tracer._interrupt(app.pid)
            deadline = time.monotonic() + 10
            while _state(app.pid) != "t":
                assert time.monotonic() < deadline, "the thread did not stop"
                time.sleep(0.01)
            os.kill(app.pid, signal.SIGCHLD)
        tracer._wait(app.pid)
        regs = tracer.regs[app.pid]
        assert tracer.restarted == 1, (regs[thread_stop.RAX], tracer.held)
        assert regs[thread_stop.RAX] == regs[thread_stop.ORIG_RAX] == RECVFROM
        tracer.release()
        _in_syscall(app.pid, RECVFROM)  # blocked in it again, not out with EINTR
        assert app.poll() is None
    finally:
        app.kill()
        app.wait()
