"""An app outlives its engine: the next engine re-attaches to it (its state intact) and goes
on patching it; a second engine on the same crate is refused; an app that cannot be
re-attached is stopped with the reason; an editor that closes for good does not leave it."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from conftest import LiveApp, alive, edit_file, fields, gone, reapers_under
from hotline.engine.app import app_record
from hotline.examples import copy_app


def _ticks(run) -> int:
    """The next tick number the app prints, from `hotline run --json` events."""
    event = run.until(lambda e: e["event"] == "app-output" and e["line"].startswith("tick="))
    return int(fields(event["line"])["tick"])


def test_a_new_hotline_run_re_attaches_to_the_app_a_killed_one_left_running_and_patches_it(
    tmp_path: Path, hotline_run
) -> None:
    crate = copy_app("plain", tmp_path)
    first = hotline_run(crate)
    pid = first.until(lambda e: e["event"] == "app-started")["pid"]
    first.until(lambda e: e["event"] == "app-output" and e["line"].startswith("tick=3 "))
    os.kill(first.proc.pid, signal.SIGKILL)  # the engine only: the app runs on unattached
    first.proc.wait(timeout=10)
    before = 3

    second = hotline_run(crate)
    adopted = second.until(lambda e: e["event"] in ("app-adopted", "app-started", "orphan-stopped"))
    assert adopted["event"] == "app-adopted", adopted
    assert adopted["pid"] == pid and adopted["seq"] == 0
    assert _ticks(second) > before  # the static kept counting: the same process, its state intact

    path = crate / "src/main.rs"
    path.write_text(path.read_text().replace('"hello".to_string()', '"re-attached".to_string()'))
    patched = second.until(lambda e: e["event"] in ("patched", "patch-refused", "compile-error"))
    assert patched["event"] == "patched" and patched["seq"] == 1, patched
    line = second.until(lambda e: e["event"] == "app-output" and "greeting=re-attached" in e["line"])["line"]
    assert int(fields(line)["tick"]) > before
    assert not [e for e in second.events if e["event"] == "app-exited"]


def test_a_second_hotline_run_on_the_same_crate_names_the_first_ones_pid_and_exits(
    tmp_path: Path, hotline_run
) -> None:
    crate = copy_app("plain", tmp_path)
    first = hotline_run(crate)
    app_pid = first.until(lambda e: e["event"] == "app-started")["pid"]
    second = hotline_run(crate)
    assert second.proc.wait(timeout=60) == 1
    message = second.until_stderr(lambda line: "already under another Hotline" in line)
    assert f"pid {first.proc.pid}" in message and f"its app is pid {app_pid}" in message
    assert not any("Traceback" in line for line in second.stderr)
    first.until(lambda e: e["event"] == "app-output" and e["line"].startswith("tick="))  # untouched


def test_an_app_left_running_is_stopped_with_the_reason_when_cargo_toml_changed_and_a_new_one_launched(
    tmp_path: Path, hotline_run
) -> None:
    crate = copy_app("plain", tmp_path)
    first = hotline_run(crate)
    pid = first.until(lambda e: e["event"] == "app-started")["pid"]
    os.kill(first.proc.pid, signal.SIGKILL)
    first.proc.wait(timeout=10)
    manifest = crate / "Cargo.toml"
    manifest.write_text(manifest.read_text() + "\n# edited while no engine ran\n")

    second = hotline_run(crate)
    stopped = second.until(lambda e: e["event"] in ("orphan-stopped", "app-adopted"))
    assert stopped == {
        "event": "orphan-stopped",
        "pid": pid,
        "reason": "Cargo.toml changed since it was built",
    }
    assert gone(pid)
    started = second.until(lambda e: e["event"] == "app-started")
    assert started["pid"] != pid


def test_a_detached_app_is_stopped_when_no_engine_re_attaches_within_the_grace_period(live_app) -> None:
    app = live_app("plain")
    pid = app.session.running.proc.pid
    app.session.detach(reap_after_s=1.0)
    os.kill(pid, 0)  # still running right after the engine let go
    assert gone(pid, timeout=15)
    assert not app.session.app_record.exists()


def test_a_detached_app_is_re_attached_by_an_engine_started_within_the_grace_period(live_app) -> None:
    app = live_app("plain")
    pid = app.session.running.proc.pid
    app.wait_line(lambda line: line.startswith("tick="))
    app.session.detach(reap_after_s=3.0)
    last = int(fields([line for line in app.lines if line.startswith("tick=")][-1])["tick"])
    successor = LiveApp(app.crate)
    try:
        assert successor.session.start() == pid
        assert [e["event"] for e in successor.events][:1] == ["app-adopted"]
        first = successor.wait_line(lambda line: line.startswith("tick="))
        assert int(fields(first)["tick"]) > last  # the same process, still counting
        reapers = reapers_under(app.session.target_dir)
        assert len(reapers) == 1, reapers
        assert gone(reapers[0], timeout=15)  # past the grace period: it found the crate owned again
        assert alive(pid)
        mark = successor.mark()
        successor.wait_line(lambda line: line.startswith("tick="), after=mark)
    finally:
        successor.session.stop()
    assert not successor.schema_problems


def test_an_unexpected_engine_exception_is_an_engine_error_event_with_its_log_and_the_app_keeps_running(
    live_app,
) -> None:
    app = live_app("plain")
    original = app.session.objects.load

    def broken(folder: Path):
        raise RuntimeError("injected fault in the object cache")

    app.session.objects.load = broken  # type: ignore[method-assign]
    app.expect("engine-error")
    app.edit('"hello".to_string()', '"after the fault".to_string()')
    outcome = app.session.patch()
    assert outcome.kind == "engine-error"
    event = next(e for e in app.events if e["event"] == "engine-error")
    assert event["message"] == "patching failed: RuntimeError: injected fault in the object cache"
    log = Path(event["log"]).read_text()
    assert "Traceback" in log and "injected fault in the object cache" in log
    mark = app.mark()
    assert "greeting=hello" in app.wait_line(lambda line: line.startswith("tick="), after=mark)

    app.session.objects.load = original  # type: ignore[method-assign]
    app.patch()
    app.wait_line(lambda line: "greeting=after the fault" in line, after=mark)


def test_the_app_record_is_private_to_the_user(live_app) -> None:
    app = live_app("plain")
    assert app.session.app_record.stat().st_mode & 0o777 == 0o600
    record, _ = app_record.read(app.session.app_record)
    assert record is not None and record.app_pid == app.session.running.proc.pid


def test_an_app_left_running_with_other_arguments_is_stopped_with_the_reason_not_re_attached(
    live_app,
) -> None:
    app = live_app("plain")
    pid = app.session.running.proc.pid
    app.session.detach()
    successor = LiveApp(app.crate, app_args=["--other"])
    try:
        new_pid = successor.session.start()
        stopped = [e for e in successor.events if e["event"] == "orphan-stopped"]
        assert stopped == [
            {"event": "orphan-stopped", "pid": pid, "reason": "it was launched with other arguments"}
        ]
        assert new_pid != pid and gone(pid)
    finally:
        successor.session.stop()


def test_a_patch_is_recorded_for_the_next_engine_before_it_is_reported(live_app) -> None:
    """An engine killed the moment it reported `patched` leaves a record the next one can
    re-attach from: the sequence number, and the patched crate's objects."""
    app = live_app("plain")
    report = app.session.on_event
    recorded: list[tuple[int, bool]] = []

    def on_event(e: dict) -> None:
        if e["event"] == "patched":
            record, _ = app_record.read(app.session.app_record)
            assert record is not None
            folder = Path(record.crates["plain.bin"]["folder"])
            recorded.append((record.seq, any(folder.glob("*.rcgu.o"))))
        report(e)

    app.session.on_event = on_event  # type: ignore[method-assign]
    app.edit('"hello".to_string()', '"recorded".to_string()')
    app.patch()
    assert recorded == [(1, True)]


def test_a_hotline_run_killed_right_after_patched_is_re_attached_to_by_the_next(
    tmp_path: Path, hotline_run
) -> None:
    crate = copy_app("plain", tmp_path)
    first = hotline_run(crate)
    pid = first.until(lambda e: e["event"] == "app-started")["pid"]
    first.watching()
    edit_file(crate / "src/main.rs", '"hello".to_string()', '"first".to_string()')
    assert first.until(lambda e: e["event"] in ("patched", "patch-refused"))["event"] == "patched"
    os.kill(first.proc.pid, signal.SIGKILL)  # the engine only, at once: the app runs on unattached
    first.proc.wait(timeout=10)

    second = hotline_run(crate)
    adopted = second.until(lambda e: e["event"] in ("app-adopted", "app-started", "orphan-stopped"))
    assert adopted == adopted | {"event": "app-adopted", "pid": pid, "seq": 1}, adopted
    second.watching()
    edit_file(crate / "src/main.rs", '"first".to_string()', '"second".to_string()')
    patched = second.until(lambda e: e["event"] in ("patched", "patch-refused", "compile-error"))
    assert patched["event"] == "patched" and patched["seq"] == 2, patched
    second.until(lambda e: e["event"] == "app-output" and "greeting=second" in e["line"])
