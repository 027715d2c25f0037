"""The restart tier: a restart always runs the newest code (issue 7)."""

from __future__ import annotations

import os

from conftest import fields


def test_restart_after_patches_runs_the_newest_code_even_with_an_old_mtime(live_app):
    app = live_app("probe")
    app.wait_line(lambda s: s.startswith("v=1"))
    app.edit("fn version() -> u32 {\n    1\n}", "fn version() -> u32 {\n    2\n}")
    app.patch()
    app.wait_line(lambda s: s.startswith("v=2"))
    # The source now says 2 but is dated before the fat build (as a checkout or a copy can be):
    # cargo's mtime check alone would call the old executable fresh and run version 1 again.
    os.utime(app.crate / "src" / "main.rs", (946684800, 946684800))
    pid = app.session.running.proc.pid
    app.session.restart()
    assert app.session.running.proc.pid != pid
    mark = app.mark()
    line = app.wait_line(lambda s: s.startswith("v="), after=mark)
    assert fields(line)["v"] == "2" and int(fields(line)["hits"]) <= 3  # a fresh process


def test_hotline_run_rebuilds_and_relaunches_when_cargo_toml_changes(tmp_path):
    import json
    import signal
    import subprocess
    import sys
    import time

    from hotline.examples import copy_app

    crate = copy_app("counter", tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "hotline", "run", str(crate), "--json"],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env=os.environ | {"HOTLINE_TARGET_DIR": str(tmp_path / "target")},
    )
    events: list[dict] = []

    def until(pred, timeout=90.0):
        deadline = time.monotonic() + timeout
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            events.append(json.loads(line))
            if pred(events[-1]):
                return events[-1]
        raise AssertionError(f"not seen; last events: {events[-5:]}")

    try:
        first = until(lambda e: e["event"] == "app-started")
        until(lambda e: e["event"] == "app-output")
        time.sleep(1.5)  # let the watcher take its first look
        manifest = crate / "Cargo.toml"
        manifest.write_text(manifest.read_text().replace('version = "0.1.0"', 'version = "0.2.0"'))
        until(lambda e: e["event"] == "restarting")
        second = until(lambda e: e["event"] == "app-started")
        assert second["pid"] != first["pid"]
        until(lambda e: e["event"] == "app-output" and e["line"].startswith("hello frame=1 "))
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=20)
