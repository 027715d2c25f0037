"""Live frames (HL1012) and pending entry jumps (issue 25; ARCHITECTURE.md §4b, §6).

The `live_loops` app has loops that never return: a thread's own `worker()` and a `run()`
that `main` calls. An edit of a loop's body is patched, but the loop keeps running its old
code: the `patched` event names the function, the thread and HL1012. An entry jump that a
debugger's breakpoint holds back stays pending and lands once the debugger is gone, with a
`jumps-landed` event, without another save.
"""

from __future__ import annotations

import io
import signal
import subprocess
import time

from conftest import LiveApp, edit_file
from hotline.cli.console import Console
from hotline.cli.printer import HumanPrinter
from hotline.engine.analyse.demangle import demangle
from hotline.engine.app import frame_scan, jump_retry, thread_stop
from hotline.examples import copy_app


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


def test_hl1012_on_a_function_that_was_only_waiting_in_a_call_is_withdrawn_once_it_returned(live_app):
    """The main thread spends nearly all its time in `frame()`'s sleep, so the patch's stop
    finds it there (HL1012); `frame` returns, its next call runs the new code (`ran`), and a
    second look finds no thread in its old copy: `returned` withdraws the warning."""
    app = live_app("live_loops", app_args=["frames"])
    app.wait_line(lambda s: s == "frame v=1 pause=300", timeout=30)
    app.edit('println!("frame v=1', 'println!("frame v=2')
    event = app.patch()
    assert [demangle(w["symbol"]) for w in hl1012(event)] == ["live_loops::frame"], event["warnings"]
    app.wait_line(lambda s: s == "frame v=2 pause=300", timeout=5)
    returned = app.wait_event("returned", timeout=5)
    assert returned["seq"] == event["seq"] and returned["functions"] == ["live_loops::frame"], returned
    assert returned["looks"] == 1, returned


def test_hl1012_is_withdrawn_when_the_last_thread_leaves_the_old_copy_seconds_after_its_new_code_ran(
    live_app,
):
    """Thread slow-1 waits 4 s in each `frame` and has just entered the old one when the
    patch comes; main's next turn runs the new code within 300 ms (`ran`), but the look
    that follows still finds slow-1 inside: the warning stays until a later look (1, 2, 4 s
    after) finds it gone."""
    app = live_app("live_loops", app_args=["slow"])
    app.wait_line(lambda s: s == "frame v=1 pause=300", timeout=30)
    mark = app.mark()
    app.wait_line(lambda s: s == "frame v=1 pause=4000", timeout=10, after=mark)  # slow-1 entered
    app.edit('println!("frame v=1', 'println!("frame v=2')
    event = app.patch()
    threads = sorted(f["thread"] for f in event["live_frames"]["frames"])
    assert len(threads) == 2 and "slow-1" in threads, event["live_frames"]
    app.wait_line(lambda s: s == "frame v=2 pause=300", timeout=5)
    returned = app.wait_event("returned", timeout=20)
    assert returned["functions"] == ["live_loops::frame"] and returned["looks"] >= 2, returned
    app.wait_line(lambda s: s == "frame v=2 pause=4000", timeout=5)  # slow-1 runs the new code


def test_hl1012_on_a_threads_own_loop_is_not_withdrawn_when_its_new_copy_runs_elsewhere(live_app):
    """`worker` is edited while thread worker-1 loops in its old copy, and the same patch
    has `frame` start worker-2, which runs the new copy (`ran`): the second look still finds
    worker-1 in the old copy, so only `frame`'s HL1012 is withdrawn, never `worker`'s."""
    app = live_app("live_loops", app_args=["frames"])
    app.wait_line(lambda s: s.startswith("worker v=1 "), timeout=30)
    app.edit('println!("worker v=1', 'println!("worker v=2')
    app.edit("second_worker(false)", "second_worker(true)")
    event = app.patch()
    named = sorted(demangle(w["symbol"]) for w in hl1012(event))
    assert named == ["live_loops::frame", "live_loops::worker"], event["warnings"]
    app.wait_line(lambda s: s.startswith("worker v=2 "), timeout=5)  # worker-2, in the new copy
    returned = app.wait_event("returned", timeout=5)
    assert returned["functions"] == ["live_loops::frame"], returned
    time.sleep(1.0)  # a look follows each ran right away
    with app._cv:
        returned_all = [f for e in app.events if e["event"] == "returned" for f in e["functions"]]
        ran_all = [f for e in app.events if e["event"] == "ran" for f in e["functions"]]
    assert "live_loops::worker" in ran_all and returned_all == ["live_loops::frame"], (ran_all, returned_all)
    mark = app.mark()
    app.wait_lines(lambda s: s.startswith("worker v=1 "), 3, after=mark)  # worker-1 keeps the old loop


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


def test_a_pending_jump_is_kept_by_the_engine_that_re_attaches_and_lands_with_its_next_patch(
    live_app, tmp_path, monkeypatch
):
    """Retries off (so that only the next patch can write it): the jump held back under
    the first engine is in the re-attached engine's next stop, which edits another function."""
    monkeypatch.setattr(jump_retry, "RETRY_AFTER_S", ())
    app = live_app("live_loops")
    app.wait_line(lambda s: s == "worker v=1 label=1", timeout=30)
    gdb = attach_gdb(app, tmp_path)
    try:
        app.edit("std::hint::black_box(1)", "std::hint::black_box(2)")
        event = app.patch()
        assert event["pending_jumps"]["pending"] == ["live_loops::label"], event
    finally:
        detach(gdb)
    app.session.detach()
    successor = LiveApp(app.crate)
    try:
        successor.session.start()
        assert [e["event"] for e in successor.events][:1] == ["app-adopted"], successor.events[:1]
        time.sleep(1)
        assert not [line for line in successor.lines if line.startswith("worker v=1 label=2")]
        successor.edit('println!("worker v=1', 'println!("worker v=2')
        event = successor.patch()
        assert event["functions"] == ["live_loops::worker"], event
        assert event["pending_jumps"] == {"landed": ["live_loops::label"], "pending": []}, event
        (landed_event,) = [e for e in successor.events if e["event"] == "jumps-landed"]
        assert landed_event["seq"] == event["seq"] and landed_event["functions"] == ["live_loops::label"]
        # the worker's loop keeps its old text (HL1012), but the label it calls is the new one
        successor.wait_line(lambda s: s == "worker v=1 label=2", timeout=10)
    finally:
        successor.session.stop()
    assert not successor.schema_problems


def test_a_return_address_counts_only_after_a_call_instruction():
    """frame_scan.follows_call: E8 rel32 and every FF /2 form, with or without REX; a word that
    only points into an old copy (after a mov, a jmp through a register) is no frame."""
    calls = ["e8 10 00 00 00", "ff d0", "41 ff d3", "ff 15 10 00 00 00", "ff 50 08", "ff 54 24 08"]
    calls += ["41 ff 54 24 08", "ff 90 00 01 00 00", "ff 14 25 00 10 00 00", "ff 10"]
    others = ["48 89 c7", "ff e0", "48 8b 45 f8", "c3", "0f 1f 44 00 00"]
    for code, expected in [(c, True) for c in calls] + [(o, False) for o in others]:
        raw = bytes.fromhex(code)
        assert frame_scan.follows_call(b"\x90" * (7 - len(raw)) + raw) is expected, code


def test_hotline_run_says_on_the_patched_line_that_the_worker_loop_keeps_its_old_code(tmp_path, hotline_run):
    crate = copy_app("live_loops", tmp_path)
    run = hotline_run(crate, json_events=False)
    run.until_stderr(lambda s: s.startswith("[hotline] app started (pid "))
    mark = len(run.stderr)
    edit_file(crate / "src" / "main.rs", 'println!("worker v=1', 'println!("worker v=2')
    line = run.until_stderr(lambda s: "patched in" in s or "refused" in s or "error" in s, after=mark)
    assert line.startswith("[hotline] patched in "), line
    assert "1 function: live_loops::worker" in line, line
    assert line.endswith(" · still running old code: live_loops::worker (thread worker-1) [HL1012]"), line
    warning = run.until_stderr(lambda s: s.startswith("[hotline] warning [HL1012]: "), after=mark)
    assert "live_loops::worker is running on thread worker-1 (tid " in warning, warning


def test_hotline_run_says_when_a_function_it_reported_running_old_code_has_returned(tmp_path, hotline_run):
    crate = copy_app("live_loops", tmp_path)
    run = hotline_run(crate, ["--", "frames"], json_events=False)
    run.until_stderr(lambda s: s.startswith("[hotline] app started (pid "))
    mark = len(run.stderr)
    edit_file(crate / "src" / "main.rs", 'println!("frame v=1', 'println!("frame v=2')
    line = run.until_stderr(lambda s: "patched in" in s or "refused" in s or "error" in s, after=mark)
    assert " · still running old code: live_loops::frame (thread live_loops" in line, line  # main's
    assert line.endswith(") [HL1012]"), line
    returned = run.until_stderr(lambda s: s.startswith("[hotline] returned: "), after=mark)
    assert returned == (
        "[hotline] returned: live_loops::frame no longer runs old code on any thread: its new code runs "
        "from its next call (patch #1)"
    ), returned


def test_under_the_signal_stop_live_frames_say_they_were_not_checked_and_why(live_app):
    app = live_app("live_loops")
    app.wait_line(lambda s: s == "worker v=1 label=1", timeout=30)
    channel = app.session.running.channel
    channel.quiet.close()  # as when ptrace is unavailable: the runtime's signal stop
    channel.quiet, channel.stop_mode = None, "signal"
    channel.stop_fallback = "ptrace is disabled (kernel.yama.ptrace_scope = 3)"
    app.edit('println!("worker v=1', 'println!("worker v=2')
    event = app.patch()
    assert event["entry_jumps"]["written"] >= 1, event
    assert hl1012(event) == [], event
    assert event["live_frames"] == {
        "checked": False,
        "why": "the signal stop was used (ptrace is disabled (kernel.yama.ptrace_scope = 3)): it sees no "
        "thread's stack",
    }, event


def test_hotline_run_prints_when_pending_jumps_land_and_when_a_retry_failed():
    out = io.StringIO()
    printer = HumanPrinter(Console(out), lambda: True)
    printer({"event": "jumps-landed", "seq": 3, "functions": ["app::label"], "symbols": ["x"], "pending": []})
    printer(
        {"event": "jumps-pending", "functions": ["app::step"], "reason": "the app closed the patch channel"}
    )
    assert out.getvalue().splitlines() == [
        "[hotline] entry jumps landed (#3): old code of app::label now runs the new",
        "[hotline] entry jumps still pending for app::step (the app closed the patch channel): they go with "
        "the next patch",
    ]


def test_main_edited_with_the_run_loop_is_hl1010_for_main_and_hl1012_for_run_only(live_app):
    """`main` is HL1010's (refused alone, a warning with others: docs/rude-edits.md); the live
    frame found in it is not reported again as HL1012."""
    app = live_app("live_loops", app_args=["run"])
    app.wait_line(lambda s: s == "run v=1 label=1", timeout=30)
    app.edit('println!("run v=1', 'println!("run v=2')
    app.edit('.name("worker-1".into())', '.name("worker-2".into())')
    event = app.patch()
    assert sorted(event["functions"]) == ["live_loops::main", "live_loops::run"], event
    rules = [
        (w["rule"], demangle(w["symbol"])) for w in event["warnings"] if w["rule"] in ("HL1010", "HL1012")
    ]
    assert sorted(rules) == [("HL1010", "live_loops::main"), ("HL1012", "live_loops::run")], rules
    assert [f["function"] for f in event["live_frames"]["frames"]] == ["live_loops::run"], event


def test_with_entry_jumps_off_a_stop_only_to_look_still_finds_the_worker_loop(live_app):
    """`--no-entry-jumps` writes no jump, so no stop would look at the stacks: one is made
    for the live frames alone."""
    app = live_app("live_loops", entry_jumps=False)
    app.wait_line(lambda s: s == "worker v=1 label=1", timeout=30)
    app.edit('println!("worker v=1', 'println!("worker v=2')
    event = app.patch()
    assert event["entry_jumps"] == {"written": 0, "skipped": 0}, event
    (warning,) = hl1012(event)
    assert warning["message"].startswith("live_loops::worker is running on thread worker-1 (tid "), warning
    assert [f["thread"] for f in event["live_frames"]["frames"]] == ["worker-1"], event
    mark = app.mark()
    app.wait_lines(lambda s: s.startswith("worker v=1 "), 3, after=mark)  # the app runs on, unharmed
