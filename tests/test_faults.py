"""Faults around a patched app: crashes are attributed, the engine going away does not take
the app with it, quick saves serialize, and a long run of patches stays bounded (issue 8)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import fields
from hotline.examples import copy_app

VERSION_1 = "fn version() -> u32 {\n    1\n}"


def _rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1])


def test_a_segfault_in_patched_code_is_reported_with_the_patch_that_introduced_it(live_app):
    app = live_app("probe")
    app.wait_line(lambda s: s.startswith("v=1"))
    app.edit(VERSION_1, "fn version() -> u32 {\n    unsafe { std::ptr::read_volatile(8 as *const u32) }\n}")
    app.patch()
    deadline = time.monotonic() + 10
    while not any(e["event"] == "app-exited" for e in app.events):
        assert time.monotonic() < deadline, "the app did not crash"
        time.sleep(0.05)
    exited = next(e for e in app.events if e["event"] == "app-exited")
    assert exited["signal"] == signal.SIGSEGV
    assert exited["last_patch"]["seq"] == 1
    assert "probe::version" in exited["last_patch"]["functions"]


def test_two_quick_saves_serialize_and_the_newest_text_wins(live_app):
    app = live_app("probe")
    app.wait_line(lambda s: s.startswith("v=1"))
    app.edit(VERSION_1, "fn version() -> u32 {\n    21\n}")
    outcomes = []
    first = threading.Thread(target=lambda: outcomes.append(app.session.patch()))
    first.start()
    time.sleep(0.05)
    app.edit("    21\n", "    22\n")
    outcomes.append(app.session.patch())
    first.join()
    assert {o.kind for o in outcomes} <= {"patched", "no-change"}, [o.event for o in outcomes]
    mark = app.mark()
    app.wait_line(lambda s: s.startswith("v=22"), after=mark)


def test_the_app_outlives_a_killed_engine_and_the_next_engine_stops_it(tmp_path):
    crate = copy_app("probe", tmp_path)
    out, err = (tmp_path / "out.txt").open("w"), (tmp_path / "err.txt").open("w")
    engine = subprocess.Popen(
        [sys.executable, "-m", "hotline", "run", str(crate)],
        stdout=out,
        stderr=err,
        start_new_session=True,
        env=os.environ | {"HOTLINE_TARGET_DIR": str(tmp_path / "target")},
    )
    app_pid = None
    try:
        deadline = time.monotonic() + 120
        while app_pid is None:
            assert time.monotonic() < deadline, (tmp_path / "err.txt").read_text()
            for line in (tmp_path / "err.txt").read_text().splitlines():
                if "app started (pid " in line:
                    app_pid = int(line.split("pid ")[1].split(")")[0])
            time.sleep(0.1)
        time.sleep(0.5)
        engine.kill()  # SIGKILL: no clean-up at all
        engine.wait()
        before = (tmp_path / "out.txt").read_text().count("\n")
        time.sleep(1.5)
        os.kill(app_pid, 0)  # still alive
        assert (tmp_path / "out.txt").read_text().count("\n") > before  # and still working
        assert "running unattached" in (tmp_path / "err.txt").read_text()
        # The next engine for this app stops the orphan before launching its own copy
        # (a server's copy would otherwise find its port taken).
        engine = subprocess.Popen(
            [sys.executable, "-m", "hotline", "run", str(crate), "--json"],
            stdout=subprocess.PIPE,
            start_new_session=True,
            env=os.environ | {"HOTLINE_TARGET_DIR": str(tmp_path / "target")},
            text=True,
        )
        assert engine.stdout is not None
        kinds = []
        for line in engine.stdout:
            kinds.append(json.loads(line)["event"])
            if kinds[-1] == "app-started":
                break
        assert "orphan-stopped" in kinds
        status = Path(f"/proc/{app_pid}/status")
        assert not status.exists() or "zombie" in status.read_text()  # its parent died: nobody reaps it
        app_pid = None
    finally:
        if app_pid is not None:
            os.kill(app_pid, signal.SIGKILL)
        if engine.poll() is None:
            os.killpg(engine.pid, signal.SIGINT)
            engine.wait(timeout=20)


def test_two_hundred_patches_on_one_process_with_bounded_memory_and_disk(live_app):
    app = live_app("probe")
    app.wait_line(lambda s: s.startswith("v=1"))
    pid = app.session.running.proc.pid
    current, rss = "1", []
    for i in range(200):
        new = str(1000 + i)
        app.edit(f"fn version() -> u32 {{\n    {current}\n}}", f"fn version() -> u32 {{\n    {new}\n}}")
        mark = app.mark()
        app.patch()
        line = app.wait_line(lambda s, new=new: s.startswith(f"v={new} "), after=mark)
        current = new
        rss.append(_rss_kib(pid))
    growth = (rss[-1] - rss[9]) / 190
    print(
        f"\nresident memory: {rss[0]} KiB after 1 patch, {rss[-1]} KiB after 200; {growth:.1f} KiB per patch"
    )
    assert growth < 256, rss
    assert int(fields(line)["frame"]) > 200  # the same process all along
    # Only the newest patch's work folder is kept (older ones pin replaced objects on disk).
    assert [p.name for p in (app.session.target_dir / "patches").iterdir()] == ["200"]


def test_a_killed_rustc_is_reported_and_the_next_save_patches(live_app, tmp_path):
    app = live_app("probe")
    app.wait_line(lambda s: s.startswith("v=1"))
    crate = app.session.crates[-1]
    real_rustc = crate.record["rustc"]
    killer = tmp_path / "rustc-killed"
    killer.write_text("#!/bin/sh\nkill -9 $$\n")
    killer.chmod(0o755)
    crate.record["rustc"] = str(killer)
    app.edit(VERSION_1, "fn version() -> u32 {\n    6\n}")
    event = app.patch(expect="compile-error")
    assert event["message"] == "rustc was killed by signal 9 while compiling probe"
    mark = app.mark()
    app.wait_line(lambda s: s.startswith("v=1"), after=mark)  # untouched
    crate.record["rustc"] = real_rustc
    app.patch()
    app.wait_line(lambda s: s.startswith("v=6"))


def test_a_full_disk_refuses_the_patch_and_loses_nothing(live_app, tmp_path):
    full = tmp_path / "full"
    full.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(full)]).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        app = live_app("probe")
        app.wait_line(lambda s: s.startswith("v=1"))
        patches = app.session.target_dir / "patches"
        shutil.rmtree(patches, ignore_errors=True)
        patches.symlink_to(full)
        app.edit(VERSION_1, "fn version() -> u32 {\n    9\n}")
        outcome = app.session.patch()
        assert outcome.kind in ("compile-error", "patch-refused")
        assert "No space left on device" in json.dumps(outcome.event)
        mark = app.mark()
        app.wait_line(lambda s: s.startswith("v=1"), after=mark)  # still the last good code
        patches.unlink()
        app.patch()
        app.wait_line(lambda s: s.startswith("v=9"))
    finally:
        subprocess.run(["umount", "-l", str(full)])
