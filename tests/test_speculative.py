"""Speculative builds (issue 18): the binary compiled from the editor's unsaved texts while the
user pauses. A save of exactly those texts is patched from that build without running rustc;
any other save is built as before, and nothing reaches the app before the save."""

from __future__ import annotations

import os
import time
from pathlib import Path

from conftest import LiveApp
from hotline.engine.build.shadow_args import shadow_args


def speculate(app: LiveApp, old: str, new: str, file: str = "src/main.rs") -> str:
    """Starts a speculative build of `file` with `old` replaced by `new`, as an editor's unsaved
    buffer; the file on disk keeps its text. Returns the buffer's text."""
    path = app.crate / file
    text = path.read_text()
    assert old in text
    buffer = text.replace(old, new, 1)
    assert app.session.speculate({path: buffer})
    assert path.read_text() == text  # the user's file is never written
    return buffer


def outcomes(app: LiveApp, count: int, timeout: float = 60.0) -> list[str]:
    """The outcomes of the first `count` speculative builds, once they have all ended."""
    deadline = time.monotonic() + timeout
    while len(app.session.speculative.history) < count:
        assert time.monotonic() < deadline, (
            f"speculative builds still running: {app.session.speculative.stats}"
        )
        time.sleep(0.02)
    return [h["outcome"] for h in app.session.speculative.history][:count]


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def cpu_ticks(pid: int) -> int:
    """User plus system CPU time the process used so far, in clock ticks."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def rustc_in_flight(app: LiveApp, ticks: int = 0) -> int:
    """The pid of the speculative rustc once it runs (`nice` has exec'd it) and has used at
    least `ticks` of CPU; fails if the build ends first."""
    builder = app.session.speculative
    deadline = time.monotonic() + 30
    while (pid := builder.rustc_pid) is None or comm(pid) != "rustc" or cpu_ticks(pid) < ticks:
        assert time.monotonic() < deadline and not builder.history, builder.history
        time.sleep(0.002)
    return pid


def patched_events(app: LiveApp) -> list[dict]:
    return [e for e in app.events if e["event"] == "patched"]


def test_shadow_arguments_redirect_every_output_and_remap_the_shadow() -> None:
    args = ["--crate-name", "app", "src/main.rs", "--emit=dep-info,link=/t/deps/app", "-o", "/t/deps/app"]
    args += ["-C", "incremental=/t/incremental", "--out-dir", "/t/deps", "-C", "debuginfo=2"]
    out = shadow_args(args, Path("/s/out"), Path("/s/incr"), "/s/root=/real")
    assert out == [
        "--crate-name", "app", "src/main.rs", "--emit=dep-info,link=/s/out/app", "-o", "/s/out/app",
        "-C", "incremental=/s/incr", "--out-dir", "/s/out", "-C", "debuginfo=2",
        "--remap-path-prefix=/s/root=/real",
    ]  # fmt: skip


def test_a_speculated_change_saved_is_applied_once_without_rustc(live_app) -> None:
    app = live_app("counter")
    app.wait_line(lambda s: s.startswith("hello frame="))
    other = app.crate / "src" / "other.rs"  # not a source of the app: nothing to speculate on
    assert not app.session.speculate({other: "fn main() {}"})
    buffer = speculate(app, '"hello"', '"hello spec"')
    assert outcomes(app, 1) == ["ok"]
    mark = app.mark()
    app.wait_lines(lambda s: "frame=" in s, 3, after=mark)
    assert not [s for s in app.lines if "hello spec" in s]  # built, never applied before the save
    assert not patched_events(app)

    (app.crate / "src" / "main.rs").write_text(buffer)  # the editor saves the same text
    event = app.patch()
    assert event["speculative"] is True
    assert event["functions"] == ["counter::greeting"]
    assert event["phases"]["rustc"] < 50  # no rustc: the objects were ready
    assert event["planned_ahead"] is True  # diffed and linked before the save, too
    app.wait_line(lambda s: s.startswith("hello spec frame="), after=mark)
    assert len(patched_events(app)) == 1
    stats = app.session.speculative.stats
    assert stats["used"] == 1 and stats["builds"] == 1, stats

    # the next save, typed without a pause, is built as before from the right sources
    app.edit('"hello spec"', '"hello again"')
    event = app.patch()
    assert not event.get("speculative")
    app.wait_line(lambda s: s.startswith("hello again frame="), after=mark)


def test_an_unsaved_file_read_by_no_build_does_not_keep_the_app_from_being_speculated_on(live_app) -> None:
    app = live_app("counter")
    app.wait_line(lambda s: s.startswith("hello frame="))
    notes = app.crate / "src" / "notes.rs"  # in the crate's folder, a source of no crate
    main = app.crate / "src" / "main.rs"
    buffer = main.read_text().replace('"hello"', '"with notes"', 1)
    assert app.session.speculate({notes: "fn draft() {}\n", main: buffer})
    assert outcomes(app, 1) == ["ok"]
    mark = app.mark()
    main.write_text(buffer)  # notes.rs stays unsaved
    assert app.patch()["speculative"] is True
    app.wait_line(lambda s: s.startswith("with notes frame="), after=mark)


def test_a_module_added_with_its_mod_line_typed_is_compiled_ahead_saved_or_not(live_app) -> None:
    app = live_app("counter")
    app.wait_line(lambda s: s.startswith("hello frame="))
    main, returned = app.crate / "src" / "main.rs", '"hello"'
    for k, (name, word) in enumerate((("saved", "from a saved module"), ("typed", "from a typed module"))):
        module = app.crate / "src" / f"{name}.rs"  # a source of no build yet
        text = f'pub fn word() -> &\'static str {{\n    "{word}"\n}}\n'
        buffer = f"mod {name};\n" + main.read_text().replace(returned, f"{name}::word()", 1)
        if name == "saved":
            module.write_text(text)  # on disk before the `mod` line is typed
            assert app.session.speculate({main: buffer})
        else:  # only in the editor until the save
            assert app.session.speculate({main: buffer, module: text})
        assert outcomes(app, k + 1)[k] == "ok"  # the shadow has the module's file
        mark = app.mark()
        module.write_text(text)
        main.write_text(buffer)
        assert app.patch()["speculative"] is True
        app.wait_line(lambda s, w=word: s.startswith(f"{w} frame="), after=mark)
        returned = f"{name}::word()"


def test_a_speculated_change_undone_before_the_save_is_never_applied(live_app) -> None:
    app = live_app("counter")
    speculate(app, '"hello"', '"hello typed"')
    assert outcomes(app, 1) == ["ok"]
    mark = app.mark()
    app.edit('"hello"', '"hello saved"')  # the buffer was changed back, then saved with other text
    event = app.patch()
    assert not event.get("speculative")
    app.wait_line(lambda s: s.startswith("hello saved frame="), after=mark)
    assert not [s for s in app.lines if "hello typed" in s]


def test_a_save_that_differs_from_the_build_in_flight_is_built_normally(live_app) -> None:
    app = live_app("counter")
    speculate(app, '"hello"', '"hello typed"')
    rustc = rustc_in_flight(app)
    mark = app.mark()
    app.edit('"hello"', '"hello from another tool"')  # saved at once, not the buffer's text
    event = app.patch()
    assert event["speculative"] is False
    assert outcomes(app, 1) == ["killed"]  # the save stopped the build it had no use for
    assert not Path(f"/proc/{rustc}").exists()
    app.wait_line(lambda s: s.startswith("hello from another tool frame="), after=mark)
    assert app.session.speculative.stats["used"] == 0
    assert not [s for s in app.lines if "hello typed" in s]


def test_a_newer_change_kills_the_speculative_rustc_in_flight(live_app) -> None:
    app = live_app("counter")
    builder = app.session.speculative
    speculate(app, '"hello"', '"hello first"')
    pid = rustc_in_flight(app, ticks=5)  # 50 ms of CPU, thrown away by the kill
    assert os.getpriority(os.PRIO_PROCESS, pid) == 10  # niced
    buffer = speculate(app, '"hello"', '"hello second"')
    assert outcomes(app, 2) == ["killed", "ok"]
    assert not Path(f"/proc/{pid}").exists()  # killed and reaped
    wasted = builder.history[0]["cpu_s"]
    assert wasted >= 0.04 and round(builder.stats["cpu_s_wasted"], 3) == wasted, (
        builder.history,
        builder.stats,
    )
    assert builder.stats["killed"] == 1

    mark = app.mark()
    (app.crate / "src" / "main.rs").write_text(buffer)
    event = app.patch()
    assert event["speculative"] is True
    app.wait_line(lambda s: s.startswith("hello second frame="), after=mark)
    assert not [s for s in app.lines if "hello first" in s]


def test_panics_and_locations_of_a_speculative_build_name_the_real_file(live_app) -> None:
    app = live_app("probe")
    main = app.crate / "src" / "main.rs"
    declared = main.read_text().splitlines().index("fn version() -> u32 {") + 1
    buffer = speculate(app, "fn version() -> u32 {\n    1\n}", 'fn version() -> u32 {\n    panic!("boom")\n}')
    assert outcomes(app, 1) == ["ok"]
    mark = app.mark()
    main.write_text(buffer)
    event = app.patch()
    assert event["speculative"] is True
    assert {"function": "probe::version", "file": str(main), "line": declared} in [
        {k: loc[k] for k in ("function", "file", "line")} for loc in event["locations"]
    ]
    app.wait_line(lambda s: s == "caught panic: boom", after=mark)
    deadline = time.monotonic() + 10
    while not (
        panics := [e["line"] for e in app.events if e["event"] == "app-output" and "panicked" in e["line"]]
    ):
        assert time.monotonic() < deadline, "no panic message on stderr"
        time.sleep(0.05)
    assert f"panicked at src/main.rs:{declared + 1}:5:" in panics[0], panics[0]
    assert not [e for e in app.events if "shadow" in str(e)]


def test_a_library_typed_in_is_compiled_with_the_crates_after_it_and_saved_without_rustc(live_app) -> None:
    app = live_app("workspace", member="app")
    app.wait_line(lambda s: s.startswith("lib-v1"))
    macro = app.crate.parent / "stamp" / "src" / "lib.rs"  # a proc-macro: the save refuses it
    assert not app.session.speculate({macro: macro.read_text().replace("stamp-v1", "stamp-typed")})
    engine = next(c for c in app.session.crates if c.name == "engine")
    before = engine.rlib.stat()
    buffer = speculate(app, "lib-v1", "lib-typed", file="../engine/src/lib.rs")
    assert outcomes(app, 1) == ["ok"]
    assert engine.rlib.stat() == before  # the user's rlib is not written before the save
    mark = app.mark()
    app.wait_lines(lambda s: "wrapped=" in s, 3, after=mark)
    assert not [s for s in app.lines if "lib-typed" in s]

    (app.crate.parent / "engine" / "src" / "lib.rs").write_text(buffer)
    event = app.patch()
    assert event["speculative"] is True and event["planned_ahead"] is True
    assert event["crates"] == ["engine", "app"]  # the library, then the binary that links it
    app.wait_line(lambda s: s.startswith("lib-typed"), after=mark)

    # the save installed the library as its own build would have: the next saves build on it
    app.edit("lib-typed", "lib-v3", file="../engine/src/lib.rs")
    assert app.patch()["speculative"] is False
    app.wait_line(lambda s: s.startswith("lib-v3"), after=mark)
    speculate(app, "wrapped={}", "speculated wrapped={}")
    assert outcomes(app, 2) == ["ok", "ok"]
    main = app.crate / "src" / "main.rs"
    main.write_text(main.read_text().replace("wrapped={}", "speculated wrapped={}", 1))
    event = app.patch()
    assert event["speculative"] is True and event["crates"] == ["app"]
    app.wait_line(lambda s: s.startswith("lib-v3") and "speculated wrapped=[7]" in s, after=mark)


def test_a_library_saved_but_not_yet_patched_is_compiled_with_the_binary_typed_after_it(live_app) -> None:
    app = live_app("workspace", member="app")
    app.wait_line(lambda s: s.startswith("lib-v1"))
    app.edit("lib-v1", "lib-v2", file="../engine/src/lib.rs")  # saved, not yet patched
    buffer = speculate(app, "wrapped={}", "speculated wrapped={}")  # the member's cwd is the root
    assert outcomes(app, 1) == ["ok"]
    mark = app.mark()
    (app.crate / "src" / "main.rs").write_text(buffer)
    event = app.patch()
    assert event["speculative"] is True and event["crates"] == ["engine", "app"]
    app.wait_line(lambda s: s.startswith("lib-v2") and "speculated wrapped=[7]" in s, after=mark)


def test_a_patch_planned_before_another_patch_is_planned_again_at_the_save(live_app) -> None:
    app = live_app("counter")
    app.wait_line(lambda s: s.startswith("hello frame="))
    buffer = speculate(app, '"hello"', '"typed"')
    assert outcomes(app, 1) == ["ok"]
    deadline = time.monotonic() + 10
    while app.session.speculative._current is None or not app.session.speculative._current.planned.is_set():
        assert time.monotonic() < deadline, "the speculative build was never planned"
        time.sleep(0.02)
    mark = app.mark()
    app.edit('"hello"', '"other tool"')  # another text saved first: patched from its own build
    assert app.patch()["speculative"] is False
    app.wait_line(lambda s: s.startswith("other tool frame="), after=mark)

    (app.crate / "src" / "main.rs").write_text(buffer)  # now the typed text is saved
    event = app.patch()
    assert event["speculative"] is True  # the build kept for it is used
    assert event["planned_ahead"] is False  # its plan was for the code before "other tool"
    app.wait_line(lambda s: s.startswith("typed frame="), after=mark)


def _unit(obj: Path) -> str:
    """An object's codegen unit: `crate-hash.UNIT.SESSION.rcgu.o` less the incremental
    session's suffix, which differs between two builds of one text."""
    return obj.name.split(".")[1]


def test_a_speculative_build_makes_the_objects_a_save_build_makes_byte_for_byte(live_app) -> None:
    """ARCHITECTURE.md §3b: the shadow's outputs and paths are remapped so that its objects
    (code, panic Locations, debug info) are the save build's, byte for byte."""
    app = live_app("counter")
    app.wait_line(lambda s: s.startswith("hello frame="))
    buffer = speculate(app, '"hello"', '"byte for byte"')
    assert outcomes(app, 1) == ["ok"]
    build = app.session.speculative._current
    crate = next(c for c in app.session.crates if c.kind == "bin")
    speculated = {_unit(p): p.read_bytes() for p in build.objects(crate).glob("*.o")}
    assert speculated
    app.session.speculative.cancel()  # the save compiles for itself
    (app.crate / "src" / "main.rs").write_text(buffer)
    event = app.patch()
    assert event["speculative"] is False
    saved_folder = app.session.target_dir / "patches" / str(event["seq"]) / "objects" / crate.key
    saved = {_unit(p): p.read_bytes() for p in saved_folder.glob("*.o")}
    assert sorted(saved) == sorted(speculated)
    assert [name for name in saved if saved[name] != speculated[name]] == []
