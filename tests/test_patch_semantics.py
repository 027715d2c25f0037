"""What must hold when a live process is patched (issue 2, 'Semantics that must hold').

Each test builds the probe app with real cargo/rustc, launches it, patches the running
process and reads what it prints, once with entry jumps and once with safe points only.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from conftest import fields
from hotline.engine.build.workspace import Crate
from hotline.examples import copy_app


def pytest_generate_tests(metafunc):
    """Every test here holds in both patch modes: with entry jumps (the default) and with
    safe points only (`Session(entry_jumps=False)`)."""
    if "live_app" in metafunc.fixturenames:
        metafunc.parametrize("live_app", [True, False], indirect=True, ids=["entry-jumps", "safe-points"])


def test_edited_function_and_closure_run_while_state_survives(live_app):
    app = live_app("probe")
    before = fields(app.wait_line(lambda s: s.startswith("v=1") and int(fields(s)["tls"]) >= 3))
    app.edit("fn version() -> u32 {\n    1\n}", "fn version() -> u32 {\n    7\n}")
    app.edit("let scale = |x: u32| x + version();", "let scale = |x: u32| x * 2 + version() * 10;")
    mark = app.mark()
    event = app.patch()
    assert "probe::version" in event["functions"]
    after = fields(app.wait_line(lambda s: s.startswith("v=7"), after=mark))
    assert after["c"] == "70"  # the closure's new body ran
    assert after["addr"] == before["addr"]  # the static kept its address...
    assert int(after["hits"]) > int(before["hits"])  # ...and its value
    assert int(after["tls"]) > int(before["tls"])  # the thread-local was not reset
    assert int(after["frame"]) > int(before["frame"])  # the caller's stack state lives on
    assert set(event["phases"]) == {"rustc", "diff", "link", "deliver", "apply"}
    app.wait_line(lambda s: s == "on_patch ran", after=mark)  # the handler ran once, at the safe point
    assert app.lines[mark:].count("on_patch ran") == 1


def test_closure_passed_to_call_is_patched(live_app):
    app = live_app("probe")
    app.wait_line(lambda s: s.startswith("v=1"))
    app.edit(
        "hotline::call(|| step(&mut frame))",
        'hotline::call(|| {\n            step(&mut frame);\n            println!("after-step");\n        })',
    )
    mark = app.mark()
    app.patch()
    app.wait_line(lambda s: s == "after-step", after=mark)


def test_patch_adds_functions_statics_literals_and_calls_new_std_code(live_app):
    app = live_app("probe")
    app.wait_line(lambda s: s.startswith("v=1"))
    new_code = """fn extra() -> String {
    shout()
}

static SHOUTS: AtomicUsize = AtomicUsize::new(100);

fn shout() -> String {
    let n = SHOUTS.fetch_add(1, Ordering::SeqCst);
    let word: String = "brand-new".chars().rev().collect();
    format!("{}-{}-{}", word.to_uppercase(), n, std::env::consts::ARCH.len())
}"""
    app.edit("fn extra() -> String {\n    String::new()\n}", new_code)
    mark = app.mark()
    event = app.patch()
    assert "probe::shout" in event["added"]
    first = fields(app.wait_line(lambda s: "extra=WEN-DNARB" in s, after=mark))
    # A second patch keeps the static the first patch added (value and place).
    app.edit('"brand-new"', '"fresh"')
    mark = app.mark()
    app.patch()
    second = fields(app.wait_line(lambda s: "extra=HSERF" in s, after=mark))
    assert int(second["extra"].split("-")[1]) > int(first["extra"].split("-")[2])


def test_panic_in_patched_code_is_caught_by_the_original_binary(live_app):
    app = live_app("probe")
    app.wait_line(lambda s: s.startswith("v=1"))
    app.edit("fn version() -> u32 {\n    1\n}", 'fn version() -> u32 {\n    panic!("boom from patch")\n}')
    mark = app.mark()
    app.patch()
    app.wait_line(lambda s: s == "caught panic: boom from patch", after=mark)
    app.edit('panic!("boom from patch")', "3")
    mark = app.mark()
    app.patch()
    app.wait_line(lambda s: s.startswith("v=3"), after=mark)


def test_reverting_to_the_original_text_patches_back(live_app):
    app = live_app("probe")
    app.wait_line(lambda s: s.startswith("v=1"))
    app.edit("fn version() -> u32 {\n    1\n}", "fn version() -> u32 {\n    2\n}")
    app.patch()
    app.wait_line(lambda s: s.startswith("v=2"))
    app.edit("fn version() -> u32 {\n    2\n}", "fn version() -> u32 {\n    1\n}")
    mark = app.mark()
    app.patch()
    app.wait_line(lambda s: s.startswith("v=1"), after=mark)


def test_compile_error_keeps_the_app_on_its_last_good_code(live_app):
    app = live_app("probe")
    app.wait_line(lambda s: s.startswith("v=1"))
    app.edit("fn version() -> u32 {\n    1\n}", 'fn version() -> u32 {\n    let x: u32 = "no";\n    x\n}')
    event = app.patch(expect="compile-error")
    errors = [d for d in event["diagnostics"] if d["level"] == "error"]
    assert errors and errors[0]["code"]["code"] == "E0308"
    primary = next(s for s in errors[0]["spans"] if s["is_primary"])
    source = (app.crate / "src" / "main.rs").read_text().splitlines()
    assert (primary["file_name"], primary["line_start"]) == (
        "src/main.rs",
        source.index('    let x: u32 = "no";') + 1,
    )
    mark = app.mark()
    app.wait_line(lambda s: s.startswith("v=1"), after=mark)  # still running the old code
    app.edit('let x: u32 = "no";', "let x: u32 = 5;")
    mark = app.mark()
    app.patch()
    app.wait_line(lambda s: s.startswith("v=5"), after=mark)


def test_a_file_rustc_read_half_written_is_compiled_again_not_reported_as_a_compile_error(
    live_app, monkeypatch
):
    """Editors save by truncating and writing the file, so a quick second save can land
    while rustc reads the sources of the first: rustc sees half a file. Its errors belong
    to no save; the engine compiles what is on disk once the writing stopped."""
    app = live_app("probe")
    app.wait_line(lambda s: s.startswith("v=1"))
    main_rs = app.crate / "src" / "main.rs"
    whole = main_rs.read_text().replace("fn version() -> u32 {\n    1\n}", "fn version() -> u32 {\n    3\n}")
    main_rs.write_text(whole[: len(whole) // 2])  # the save, half written when rustc starts
    real = Crate.replay
    results: list[int] = []

    def replay(crate: Crate, thin_dir: Path) -> tuple[int, list[str]]:
        rc, stderr = real(crate, thin_dir)
        if not results:
            main_rs.write_text(whole)  # the rest of the save lands while rustc runs
        results.append(rc)
        return rc, stderr

    monkeypatch.setattr(Crate, "replay", replay)
    mark = app.mark()
    app.patch()
    assert results[0] != 0 and results[1:] == [0], results
    app.wait_line(lambda s: s.startswith("v=3"), after=mark)


def test_a_save_that_changes_no_code_is_no_change(live_app):
    app = live_app("probe")
    app.wait_line(lambda s: s.startswith("v=1"))
    # A comment on an existing line: no code and no line number moves.
    app.edit("fn version() -> u32 {", "fn version() -> u32 { // returns the version")
    app.patch(expect="no-change")


def test_twenty_patches_in_a_row_all_apply(live_app):
    app = live_app("probe")
    app.wait_line(lambda s: s.startswith("v=1"))
    current = "1"
    for i in range(20):
        new = str(100 + i)
        app.edit(f"fn version() -> u32 {{\n    {current}\n}}", f"fn version() -> u32 {{\n    {new}\n}}")
        mark = app.mark()
        app.patch()
        app.wait_line(lambda s, new=new: s.startswith(f"v={new} "), after=mark)
        current = new


def test_release_builds_carry_no_hot_reload_machinery(tmp_path):
    crate = copy_app("counter", tmp_path)
    subprocess.run(["cargo", "build", "--release", "-q"], cwd=crate, check=True)
    exe = crate / "target" / "release" / "counter"
    symbols = subprocess.run(["nm", str(exe)], capture_output=True, text=True).stdout
    assert "hotline_aslr_anchor" not in symbols and "hotline7channel" not in symbols
    env = os.environ | {
        "HOTLINE_SOCKET": str(tmp_path / "none.sock"),
        "HOTLINE_TOKEN": "t" * 32,
        "HOTLINE_BUILD_ID": "x",
    }
    proc = subprocess.Popen([str(exe)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().startswith("hello frame=1")
    finally:
        proc.kill()
        _, err = proc.communicate()
    assert "[hotline]" not in err  # it never even tried to connect
