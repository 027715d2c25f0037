"""`hotline run` as a terminal user runs it (README, "Use" and "CLI reference"): `--bin`, the
`patched in` line, `--json` events that match their schema, Ctrl-C, and a session that leaves
the user's `target/debug` and sources alone (issue 19, item 8)."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import time
from pathlib import Path

from conftest import edit_file, gone
from hotline.examples import copy_app

GREETING = 'fn greeting() -> &\'static str {\n    "hello"\n}'


def test_hotline_run_bin_runs_and_patches_the_named_one_of_two_binaries(tmp_path, hotline_run):
    crate = copy_app("twobins", tmp_path)
    run = hotline_run(crate, ["--bin", "beta"])
    started = run.until(lambda e: e["event"] == "app-started")
    assert Path(started["executable"]).name.startswith("beta"), started
    line = run.until(lambda e: e["event"] == "app-output")["line"]
    assert line.startswith("beta frame="), line
    run.watching()
    edit_file(crate / "src" / "bin" / "beta.rs", '    "beta"\n', '    "beta2"\n')
    patched = run.until(lambda e: e["event"] in ("patched", "patch-refused", "compile-error", "no-change"))
    assert patched["event"] == "patched" and patched["functions"] == ["beta::name"], patched
    line = run.until(lambda e: e["event"] == "app-output")["line"]
    assert line.startswith("beta2 frame="), line
    assert int(line.split("frame=")[1]) > 1  # the same process, patched


def test_hotline_run_without_bin_names_both_binaries_and_fails(tmp_path):
    crate = copy_app("twobins", tmp_path)
    proc = subprocess.run(
        ["python3", "-m", "hotline", "run", str(crate)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 1
    assert "has several binaries (alpha, beta): pick one with --bin" in proc.stderr, proc.stderr


def test_hotline_run_prints_one_patched_in_line_per_save(tmp_path, hotline_run):
    crate = copy_app("counter", tmp_path)
    run = hotline_run(crate, json_events=False)
    run.until_stderr(lambda s: s.startswith("[hotline] app started (pid "))
    _wait_stdout(run, lambda s: s.startswith("hello frame="))
    mark = len(run.stderr)
    edit_file(crate / "src" / "main.rs", GREETING, GREETING.replace('"hello"', '"howdy"'))
    line = run.until_stderr(lambda s: "patched" in s or "refused" in s or "error" in s, after=mark)
    number = r"\d+"
    assert re.fullmatch(
        rf"\[hotline\] patched in {number}ms  \(rustc {number} · diff {number} · link {number} · "
        rf"deliver {number} · apply {number} · linked {number}/{number} units\)   1 function: counter::greeting",
        line,
    ), line
    _wait_stdout(run, lambda s: s.startswith("howdy frame="))
    assert [s for s in run.stderr[mark:] if "patched in" in s] == [line]  # one line for one save


def _wait_stdout(run, pred, timeout: float = 90.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run.drain()
        found = [s for s in run.stdout if pred(s)]
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"no matching stdout line in {timeout}s; last: {run.stdout[-5:]}")


def test_every_hotline_run_json_event_matches_the_events_schema(tmp_path, hotline_run):
    crate = copy_app("counter", tmp_path)
    run = hotline_run(crate)
    run.until(lambda e: e["event"] == "app-output")
    run.watching()
    main = crate / "src" / "main.rs"
    done = ("patched", "patch-refused", "compile-error", "no-change")
    edit_file(main, '"hello"', '"howdy"')  # patched
    assert run.until(lambda e: e["event"] in done)["event"] == "patched"
    edit_file(main, '"howdy"', '"howdy" +')  # compile-error, with rustc's diagnostics
    assert run.until(lambda e: e["event"] in done)["event"] == "compile-error"
    edit_file(main, '"howdy" +', '"howdy"')
    edit_file(main, "    frame: u64,\n", "    frame: u64,\n    extra: u64,\n")  # a layout change
    edit_file(main, "World { frame: 0,", "World { frame: 0, extra: 0,")
    refused = run.until(lambda e: e["event"] in done)
    assert refused["event"] == "patch-refused" and refused["rule"] == "HL1002", refused
    manifest = crate / "Cargo.toml"
    manifest.write_text(manifest.read_text().replace('version = "0.1.0"', 'version = "0.2.0"'))
    run.until(lambda e: e["event"] == "restarting")
    run.until(lambda e: e["event"] == "app-output" and e["line"].startswith("howdy frame=1 "))
    run.stop()  # Ctrl-C: the app exits too
    run.drain()
    kinds = {e["event"] for e in run.events}
    expected = {"build-started", "build-finished", "app-started", "app-output", "patch-started"}
    expected |= {"patched", "compile-error", "patch-refused", "restarting", "app-exited"}
    assert expected <= kinds, kinds
    assert run.schema_problems == []


def test_ctrl_c_stops_hotline_run_and_the_app_it_launched(tmp_path, hotline_run):
    run = hotline_run(copy_app("counter", tmp_path))
    pid = run.until(lambda e: e["event"] == "app-started")["pid"]
    run.until(lambda e: e["event"] == "app-output")
    os.killpg(run.proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C: the whole group
    assert run.proc.wait(timeout=20) == 0
    assert gone(pid), f"the app (pid {pid}) outlived hotline run"


def _snapshot(root: Path, skip: str | None = None) -> dict[str, tuple[str, int]]:
    """Every file under `root` (not under `skip`): its content hash and mtime."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and not (skip and rel.parts[0] == skip):
            out[str(rel)] = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
    return out


def test_a_whole_session_leaves_target_debug_and_the_sources_untouched(tmp_path, hotline_run):
    crate = copy_app("counter", tmp_path)
    subprocess.run(["cargo", "build", "-q"], cwd=crate, check=True, timeout=300)  # the user's own build
    debug = crate / "target" / "debug"
    debug_before, sources_before = _snapshot(debug), _snapshot(crate, skip="target")
    run = hotline_run(crate, own_target_dir=True)  # where a user's run builds: target/hotline
    run.until(lambda e: e["event"] == "app-output")
    run.watching()
    main = crate / "src" / "main.rs"
    edit_file(main, '"hello"', '"howdy"')
    edited = main.read_text()
    assert (
        run.until(lambda e: e["event"] in ("patched", "patch-refused", "compile-error"))["event"] == "patched"
    )
    run.until(lambda e: e["event"] == "app-output" and e["line"].startswith("howdy "))
    run.stop()
    assert (crate / "target" / "hotline").is_dir()
    assert _snapshot(debug) == debug_before
    sources_after = _snapshot(crate, skip="target")
    changed = {k for k in sources_before if sources_before[k] != sources_after.get(k)}
    assert changed == {"src/main.rs"} and set(sources_after) == set(sources_before), changed
    assert main.read_text() == edited  # exactly the test's own edit


def test_no_entry_jumps_on_the_command_line_patches_through_safe_points_only(tmp_path, hotline_run):
    crate = copy_app("counter", tmp_path)  # its tick runs inside hotline::call: a safe point
    run = hotline_run(crate, ["--no-entry-jumps"])
    run.watching()
    edit_file(crate / "src" / "main.rs", '"hello"', '"strict"')
    patched = run.until(lambda e: e["event"] in ("patched", "patch-refused", "compile-error"))
    assert patched["event"] == "patched" and patched["entry_jumps"]["written"] == 0, patched
    run.until(lambda e: e["event"] == "app-output" and e["line"].startswith("strict frame="))


def test_no_debug_info_on_the_command_line_writes_no_debug_elf_or_perf_map(tmp_path, hotline_run):
    crate = copy_app("counter", tmp_path)
    run = hotline_run(crate, ["--no-debug-info"])
    pid = run.until(lambda e: e["event"] == "app-started")["pid"]
    run.watching()
    edit_file(crate / "src" / "main.rs", '"hello"', '"undebugged"')
    patched = run.until(lambda e: e["event"] in ("patched", "patch-refused", "compile-error"))
    assert patched["event"] == "patched", patched
    run.until(lambda e: e["event"] == "app-output" and e["line"].startswith("undebugged frame="))
    run.stop()  # by now a run with debug info has started writing it (right after `patched`)
    assert not list((tmp_path / "target" / "patches-debug").rglob("*.debug"))
    assert not Path(f"/tmp/perf-{pid}.map").exists()


def test_a_statically_linked_app_is_refused_with_the_musl_message(tmp_path, hotline_run, monkeypatch):
    """README: the runtime cannot be preloaded into a static executable (musl, or glibc's
    crt-static as here, which needs no extra target installed)."""
    monkeypatch.setenv("RUSTFLAGS", "-C target-feature=+crt-static")
    crate = copy_app("plain", tmp_path)
    run = hotline_run(crate, json_events=False)
    assert run.proc.wait(timeout=300) == 1
    line = run.until_stderr(lambda s: s.startswith("hotline: "))
    assert re.fullmatch(
        r"hotline: plain-[0-9a-f]+ is statically linked \(musl\?\), so the runtime cannot be preloaded "
        r"into it: build for a glibc target, or make the app depend on the runtime crate \(README, \"Use\"\)",
        line,
    ), line
