"""The restart tier: a restart always runs the newest code (issue 7)."""

from __future__ import annotations

import ctypes
import os
import signal
import time
from pathlib import Path

from conftest import fields
from hotline.examples import copy_app


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


def test_hotline_run_rebuilds_and_relaunches_when_cargo_toml_changes(tmp_path, hotline_run):
    crate = copy_app("counter", tmp_path)
    run = hotline_run(crate)
    first = run.until(lambda e: e["event"] == "app-started")
    run.until(lambda e: e["event"] == "app-output")
    run.watching()
    manifest = crate / "Cargo.toml"
    manifest.write_text(manifest.read_text().replace('version = "0.1.0"', 'version = "0.2.0"'))
    run.until(lambda e: e["event"] == "restarting")
    second = run.until(lambda e: e["event"] == "app-started")
    assert second["pid"] != first["pid"]
    run.until(lambda e: e["event"] == "app-output" and e["line"].startswith("hello frame=1 "))


def test_hotline_run_relaunches_an_app_that_died_on_the_next_save(tmp_path, hotline_run):
    crate = copy_app("counter", tmp_path)
    run = hotline_run(crate)
    run.until(lambda e: e["event"] == "app-output")
    run.watching()
    main = crate / "src" / "main.rs"
    main.write_text(main.read_text().replace('"hello"', 'panic!("bad edit")'))
    run.until(lambda e: e["event"] == "patched")
    exited = run.until(lambda e: e["event"] == "app-exited")
    assert exited["code"] == 101  # a panic outside catch_unwind ends the app: reported with its code
    main.write_text(main.read_text().replace('panic!("bad edit")', '"fixed"'))
    run.until(lambda e: e["event"] == "restarting" and e["reason"] == "the app is not running")
    run.until(lambda e: e["event"] == "app-output" and e["line"].startswith("fixed frame=1 "))


def test_terminating_hotline_run_stops_the_app_it_launched(tmp_path, hotline_run):
    run = hotline_run(copy_app("counter", tmp_path))
    pid = run.until(lambda e: e["event"] == "app-started")["pid"]
    run.until(lambda e: e["event"] == "app-output")
    run.proc.send_signal(signal.SIGTERM)  # what `kill` and process managers send
    assert run.proc.wait(timeout=20) == 0
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{pid}") and "zombie" not in _state(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not os.path.exists(f"/proc/{pid}") or "zombie" in _state(pid)


def test_an_interrupt_the_kernel_gives_to_another_thread_of_hotline_run_still_stops_it(tmp_path, hotline_run):
    """A signal to a process goes to any of its threads; Python acts on it in the main thread
    only, which must not sleep through it (seen in CI: hotline run ignored a Ctrl-C)."""
    run = hotline_run(copy_app("counter", tmp_path))
    pid = run.until(lambda e: e["event"] == "app-started")["pid"]
    run.until(lambda e: e["event"] == "app-output")
    time.sleep(1.0)  # idle: the main thread waits for a save
    others = [int(t) for t in os.listdir(f"/proc/{run.proc.pid}/task") if int(t) != run.proc.pid]
    assert others, "hotline run has no thread but its main one"
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.syscall(SYS_TGKILL, run.proc.pid, others[0], signal.SIGINT) == 0, ctypes.get_errno()
    assert run.proc.wait(timeout=10) == 0
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{pid}") and "zombie" not in _state(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not os.path.exists(f"/proc/{pid}") or "zombie" in _state(pid)


SYS_TGKILL = 234  # x86-64: a signal to one thread of a process


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:", 1)[1].split("\n", 1)[0]
    except (FileNotFoundError, IndexError):
        return "gone"


def _greeting_from_build_script(crate: Path, greeting: str) -> None:
    """counter, with its greeting made by a build script (`cargo:rustc-env`)."""
    (crate / "build.rs").write_text(
        f'fn main() {{\n    println!("cargo:rustc-env=GREETING={greeting}");\n}}\n'
    )
    main = crate / "src" / "main.rs"
    main.write_text(main.read_text().replace('    "hello"\n', '    env!("GREETING")\n', 1))


def test_hotline_run_rebuilds_and_relaunches_when_build_rs_changes(tmp_path, hotline_run):
    crate = copy_app("counter", tmp_path)
    _greeting_from_build_script(crate, "hello")
    run = hotline_run(crate)
    first = run.until(lambda e: e["event"] == "app-started")
    run.until(lambda e: e["event"] == "app-output" and e["line"].startswith("hello frame="))
    run.watching()
    build_rs = crate / "build.rs"
    build_rs.write_text(build_rs.read_text().replace("GREETING=hello", "GREETING=howdy"))
    restarting = run.until(lambda e: e["event"] in ("restarting", "patch-started", "app-started"))
    assert restarting["event"] == "restarting", restarting
    second = run.until(lambda e: e["event"] == "app-started")
    assert second["pid"] != first["pid"]
    # The relaunched app runs what the edited build script generated, from its first frame.
    line = run.until(lambda e: e["event"] == "app-output")
    assert line["line"].startswith("howdy frame=1 "), line


def test_hotline_run_rebuilds_and_relaunches_when_cargo_lock_changes(tmp_path, hotline_run):
    crate = copy_app("counter", tmp_path)
    run = hotline_run(crate)
    first = run.until(lambda e: e["event"] == "app-started")
    run.until(lambda e: e["event"] == "app-output")
    run.watching()
    lock = crate / "Cargo.lock"
    lock.write_text(lock.read_text() + "\n")  # a save of the lock file (cargo update, a merge, an editor)
    restarting = run.until(lambda e: e["event"] in ("restarting", "patch-started", "app-started"))
    assert restarting["event"] == "restarting", restarting
    second = run.until(lambda e: e["event"] == "app-started")
    assert second["pid"] != first["pid"]
    line = run.until(lambda e: e["event"] == "app-output")
    assert line["line"].startswith("hello frame=1 "), line
