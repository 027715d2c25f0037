"""Live frames (HL1012) and pending entry jumps (issue 25; ARCHITECTURE.md §4b, §6).

The `live_loops` app has loops that never return: a thread's own `worker()` and a `run()`
that `main` calls. An edit of a loop's body is patched, but the loop keeps running its old
code: the `patched` event names the function, the thread and HL1012. An entry jump that a
debugger's breakpoint holds back stays pending and lands once the debugger is gone, with a
`jumps-landed` event, without another save.
"""

from __future__ import annotations

import signal
import subprocess
import time

from conftest import LiveApp
from hotline.engine import thread_stop


def hl1012(event: dict) -> list[dict]:
    return [w for w in event["warnings"] if w["rule"] == "HL1012"]


def test_a_threads_own_loop_edited_is_reported_running_on_its_thread_with_hl1012(live_app):
    app = live_app("live_loops")
    app.wait_line(lambda s: s == "worker v=1 label=1", timeout=30)
    assert app.session.running.channel.stop_mode == "ptrace"
    app.edit('println!("worker v=1', 'println!("worker v=2')
    event = app.patch()
    assert event["functions"] == ["live_loops::worker"], event
    (warning,) = hl1012(event)
    assert warning["message"].startswith("live_loops::worker "), warning
    assert "is running on thread worker-1 (tid " in warning["message"], warning
    assert "has not returned" in warning["message"], warning
    assert warning["file"] == "src/main.rs" and warning["line"] == 16, warning
    (frame,) = event["live_frames"]["frames"]
    assert frame["function"] == "live_loops::worker" and frame["thread"] == "worker-1", frame
    assert str(frame["tid"]) in warning["message"]
    # what it says is true: the loop still prints its old text
    mark = app.mark()
    app.wait_lines(lambda s: s.startswith("worker v=1 "), 5, after=mark)
    assert not [line for line in app.lines[mark:] if line.startswith("worker v=2")]


def test_a_run_loop_that_main_calls_edited_is_reported_running_on_the_main_thread_with_hl1012(live_app):
    app = live_app("live_loops", app_args=["run"])
    app.wait_line(lambda s: s == "run v=1 label=1", timeout=30)
    app.edit('println!("run v=1', 'println!("run v=2')
    event = app.patch()
    assert event["functions"] == ["live_loops::run"], event
    (warning,) = hl1012(event)
    assert warning["message"].startswith("live_loops::run "), warning
    pid = app.session.running.proc.pid
    # the main thread: its tid is the pid, its name the executable's (cut to 15 bytes)
    assert "is running on thread live_loops-" in warning["message"], warning
    assert f"(tid {pid}) and has not returned" in warning["message"], warning
    (frame,) = event["live_frames"]["frames"]
    assert frame["function"] == "live_loops::run" and frame["tid"] == pid, frame


def test_an_edit_of_a_function_the_loops_call_is_not_reported_as_a_live_frame(live_app):
    app = live_app("live_loops")
    app.wait_line(lambda s: s == "worker v=1 label=1", timeout=30)
    app.edit("std::hint::black_box(1)", "std::hint::black_box(2)")
    event = app.patch()
    assert event["functions"] == ["live_loops::label"], event
    assert hl1012(event) == [] and event["live_frames"] == {"checked": True, "frames": []}, event
    app.wait_line(lambda s: s == "worker v=1 label=2", timeout=10)


GDB_SCRIPT = """\
set pagination off
handle SIG32 SIG33 SIG34 SIG35 SIG36 SIG37 SIG38 SIG39 SIG40 SIG41 SIG42 SIG43 nostop noprint pass
handle SIG44 SIG45 SIG46 SIG47 SIG48 SIG49 SIG50 SIG51 SIG52 SIG53 SIG54 SIG55 nostop noprint pass
handle SIG56 SIG57 SIG58 SIG59 SIG60 SIG61 SIG62 SIG63 SIG64 nostop noprint pass
break *live_loops::label
commands
silent
continue
end
continue
"""


def attach_gdb(app: LiveApp, script_dir) -> subprocess.Popen:
    """gdb attached to the app, with a breakpoint on the first byte of `label()`."""
    script = script_dir / "gdb.cmd"
    script.write_text(GDB_SCRIPT)
    pid = app.session.running.proc.pid
    gdb = subprocess.Popen(
        ["gdb", "-batch", "-nx", "-p", str(pid), "-x", str(script)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 30
    while thread_stop.QuietStop.unavailable(pid) is None:
        assert time.monotonic() < deadline, "gdb did not attach"
        time.sleep(0.1)
    time.sleep(1)  # the breakpoint is inserted once gdb continues
    return gdb


def detach(gdb: subprocess.Popen) -> None:
    gdb.send_signal(signal.SIGINT)
    try:
        gdb.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        gdb.kill()
        gdb.communicate()


def landed(app: LiveApp, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [e for e in list(app.events) if e["event"] == "jumps-landed"]
        if found:
            return found[0]
        time.sleep(0.1)
    raise AssertionError(
        f"no jumps-landed in {timeout}s; events: {[e for e in app.events if e['event'] != 'app-output'][-3:]}"
    )


def test_a_jump_a_breakpoint_held_back_lands_after_the_debugger_left_without_another_save(live_app, tmp_path):
    app = live_app("live_loops")
    app.wait_line(lambda s: s == "worker v=1 label=1", timeout=30)
    gdb = attach_gdb(app, tmp_path)
    try:
        app.edit("std::hint::black_box(1)", "std::hint::black_box(2)")
        event = app.patch()
        held = [w for w in event["warnings"] if w["rule"] == "HL1008"]
        assert held and "a debugger is attached" in held[0]["message"], event["warnings"]
        assert event["entry_jumps"]["written"] == 0, event
        assert event["pending_jumps"] == {"landed": [], "pending": ["live_loops::label"]}, event
    finally:
        detach(gdb)
    mark = app.mark()
    event = landed(app, timeout=20)
    assert event["functions"] == ["live_loops::label"] and event["pending"] == [], event
    app.wait_line(lambda s: s == "worker v=1 label=2", timeout=10, after=mark)
    assert app.session.pending.jumps == []
    assert not app.exits()
