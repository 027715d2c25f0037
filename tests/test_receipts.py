"""Receipts (issue 25): each edited function reports when its new code first ran, and one
that has not run 3 s after its patch is reported as `not-run` (HL1013).

The `receipts` app calls `settings` once at start-up and `step` every 50 ms, with no safe
point: both are reached through entry jumps only.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time

import pytest
from conftest import LiveApp, edit_file, fields
from hotline import REPO_ROOT, examples
from hotline.engine.app import patch_delivery
from hotline.engine.link.patch_link import LinkedPatch
from hotline.engine.report.receipts import NOT_RUN_AFTER

SETTINGS_LINE = 5  # `fn settings` in tests/apps/receipts/src/main.rs


@pytest.fixture(autouse=True)
def receipts_app_bundled(monkeypatch):
    """The `receipts` app, copied like the bundled apps (hotline.examples)."""
    monkeypatch.setitem(examples.APPS, "receipts", REPO_ROOT / "tests" / "apps" / "receipts")


@pytest.fixture
def receipts_app(live_app):
    app = live_app("receipts")
    app.wait_line(lambda s: s.startswith("tick "))
    return app


def events(app: LiveApp, kind: str) -> list[dict]:
    with app._cv:
        return [e for e in app.events if e["event"] == kind]


def test_an_init_function_edited_after_it_ran_is_reported_as_not_run_with_hl1013(receipts_app):
    app = receipts_app
    app.edit("    7\n", "    8\n")
    patched = app.patch()
    assert patched["functions"] == ["receipts::settings"]
    started = time.monotonic()
    not_run = app.wait_event("not-run", timeout=NOT_RUN_AFTER + 5)
    assert time.monotonic() - started >= NOT_RUN_AFTER - 0.5
    assert not_run["seq"] == patched["seq"] and not_run["rule"] == "HL1013"
    assert not_run["functions"] == ["receipts::settings"]
    (warning,) = not_run["warnings"]
    assert (
        warning["rule"] == "HL1013" and warning["file"] == "src/main.rs" and warning["line"] == SETTINGS_LINE
    )
    assert "receipts::settings has not been called since the patch" in warning["message"]
    assert "restart to apply" in warning["message"]
    assert not events(app, "ran")


def test_a_function_called_in_a_loop_is_reported_as_ran_soon_after_its_patch(receipts_app):
    app = receipts_app
    app.edit("    n + 1\n", "    n + 100\n")
    patched = app.patch()
    assert patched["functions"] == ["receipts::step"]
    ran = app.wait_event("ran", timeout=5)
    assert ran["seq"] == patched["seq"] and ran["functions"] == ["receipts::step"]
    assert ran["ms"] < 1000  # called every 50 ms, read every 20 ms in the first second
    # the receipt is true: the new code prints
    first, second = app.wait_lines(lambda s: s.startswith("tick ") and fields(s)["patches"] == "1", 2)
    assert int(fields(second)["n"]) - int(fields(first)["n"]) == 100
    time.sleep(NOT_RUN_AFTER + 0.5)
    assert not events(app, "not-run")


# Both edits in one save: `step` runs in the loop, `settings` ran once before the patch.
BOTH = ("    n + 1\n", "    n + 100\n", "    7\n", "    8\n")


def test_hotline_run_prints_ran_and_not_called_yet_for_the_patched_functions(tmp_path, hotline_run):
    crate = examples.copy_app("receipts", tmp_path)
    run = hotline_run(crate, json_events=False)
    run.until_stderr(lambda s: s.startswith("[hotline] app started (pid "))
    mark = len(run.stderr)
    edit_file(crate / "src" / "main.rs", *BOTH)
    run.until_stderr(lambda s: "patched in" in s, after=mark)
    ran = run.until_stderr(lambda s: "ran:" in s, after=mark)
    assert re.fullmatch(r"\[hotline\] ran: receipts::step \(patch #1, \d+ms after it\)", ran), ran
    not_run = run.until_stderr(lambda s: "not called yet" in s, after=mark, timeout=NOT_RUN_AFTER + 10)
    assert not_run.startswith(
        "[hotline] not called yet [HL1013]: receipts::settings has not been called since the patch (3 s)"
    ), not_run
    assert not [s for s in run.stderr[mark:] if "ran:" in s and "settings" in s]


def test_hotline_run_json_reports_ran_and_not_run_events_that_match_the_schema(tmp_path, hotline_run):
    crate = examples.copy_app("receipts", tmp_path)
    run = hotline_run(crate)
    run.until(lambda e: e["event"] == "app-output")
    run.watching()
    edit_file(crate / "src" / "main.rs", *BOTH)
    patched = run.until(lambda e: e["event"] == "patched")
    assert sorted(patched["functions"]) == ["receipts::settings", "receipts::step"]
    ran = run.until(lambda e: e["event"] == "ran")
    assert ran["functions"] == ["receipts::step"] and ran["seq"] == patched["seq"]
    not_run = run.until(lambda e: e["event"] == "not-run", timeout=NOT_RUN_AFTER + 10)
    assert not_run["functions"] == ["receipts::settings"] and not_run["rule"] == "HL1013"
    run.drain()
    assert run.schema_problems == []


def test_a_loop_still_running_its_old_code_is_left_to_hl1012_and_gets_no_not_run(live_app):
    """`worker` never returns (live_loops, the live-frames app): HL1012 says why its new code does
    not run, so receipts do not add an HL1013 that would call it an init function."""
    app = live_app("live_loops")
    app.wait_line(lambda s: s == "worker v=1 label=1", timeout=30)
    app.edit('println!("worker v=1', 'println!("worker v=2')
    patched = app.patch()
    assert [f["function"] for f in patched["live_frames"]["frames"]] == ["live_loops::worker"]
    time.sleep(NOT_RUN_AFTER + 1)
    assert not events(app, "not-run") and not events(app, "ran")


def test_a_receipts_read_the_app_refuses_is_an_engine_error_and_the_app_runs_on(receipts_app):
    """Fault injection: flags the runtime must not read (address 8, outside the patch). It
    refuses, and the engine says so instead of going quiet (no silent failure)."""
    app = receipts_app
    app.edit("    n + 1\n", "    n + 100\n")
    seq = app.patch()["seq"]
    app.wait_event("ran", timeout=5)
    app.expect("engine-error")
    bogus = LinkedPatch(b"", [], [], None, [], {}, {}, {}, {}, 0, first_call_flags={"f": 8}, flags=(8, 1))
    app.session.running.receipts.track(seq, bogus, {"f": {}}, carriers={}, callable={"f"})
    error = app.wait_event("engine-error", timeout=5)
    assert error["message"] == (
        "reading the app's receipts failed: ReceiptsRefused: the app refused to read receipts: "
        f"the flags of patch {seq} do not lie in its writable memory (or it was not applied)"
    )
    mark = app.mark()
    app.wait_lines(lambda s: s.startswith("tick "), 3, after=mark)


def test_a_receipts_read_the_apps_death_cut_short_is_no_engine_error(live_app, monkeypatch):
    """The app died while the engine read its receipts: its end of the channel is closed
    before the engine's exit watcher is back from `waitpid` (and while it is in there,
    `Popen.poll()` says None: unknown). The lost channel is the exit's news (`app-exited`),
    not an engine error. The watcher is held just after its `waitpid` returned, so the read
    fails in that window every time."""
    real_waitpid, held, reaped, release = os.waitpid, set(), threading.Event(), threading.Event()

    def waitpid(pid: int, options: int) -> tuple[int, int]:
        result = real_waitpid(pid, options)
        if result[0] in held:
            reaped.set()
            release.wait(30)
        return result

    monkeypatch.setattr(os, "waitpid", waitpid)
    app = live_app("receipts")
    app.wait_line(lambda s: s.startswith("tick "))
    running = app.session.running
    held.add(running.proc.pid)
    os.kill(running.proc.pid, signal.SIGKILL)
    assert reaped.wait(10), "the exit watcher did not reap the app"
    try:
        receipts = patch_delivery._receipts(app.session, running)
        patch = LinkedPatch(b"", [], [], None, [], {}, {}, {}, {}, 0, first_call_flags={"f": 8}, flags=(8, 1))
        receipts.track(1, patch, {"f": {}}, carriers={}, callable={"f"})
        receipts._thread.join(10)  # the read failed, and the failure was handled
        assert not receipts._thread.is_alive()
    finally:
        release.set()
    exited = app.wait_event("app-exited", timeout=10)
    assert exited["signal"] == signal.SIGKILL
    assert not events(app, "engine-error")
