"""Real project shapes (issue 14): each is patched, or refused with a message that names the
cause and the fix; never a traceback, never `patched` with the old behaviour.

Live: real cargo, rustc and processes, on std-only apps that do not depend on the runtime
(it is preloaded). `tests/apps/shape_workspace` holds library members of every crate type
(dylib, cdylib, staticlib), a target-specific dependency, a proc-macro with a support
library, default members, and a dependency outside the workspace built at opt-level 3;
`tests/apps/shape_package` is one edition 2024 package with a library and binaries of the
same name, a `[[bin]]` at a custom path, an example, a build script that generates code, a
feature, a `#[path]` module and included files. Each is built once for the tests that only
patch it; profiles that cannot be patched safely are refused at the fat build.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import LiveApp, edit_file, fields
from hotline.engine.errors import HotlineError
from hotline.engine.session import Session
from hotline.examples import copy_app

_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # rustc colours the errors cargo passes on


class ShapeApp(LiveApp):
    """A LiveApp whose Session takes any option: a binary, features, a profile."""

    def __init__(self, crate: Path, **options: object) -> None:
        self.crate = crate
        self.events: list[dict] = []
        self.lines: list[str] = []
        self.schema_problems: list[str] = []
        self._cv = threading.Condition()
        self.session = Session(crate, self._on_event, **options)  # type: ignore[arg-type]

    def patch_and_see(self, file: str, old: str, new: str, key: str, value: str) -> dict:
        """Edits `file`, patches, and waits for the same process to print `key=value`, which
        it did not print before the patch."""
        self.wait_line(lambda s: key + "=" in s)
        with self._cv:
            before = fields(self.lines[-1])
        assert before[key] != value, f"{key}={value} before the patch: {before}"
        self.edit(old, new, file=file)
        event = self.patch()
        mark = self.mark()  # lines from here on were printed after the app applied the patch
        after = fields(self.wait_line(lambda s: key + "=" in s, after=mark))
        assert after[key] == value, after
        assert int(after["frame"]) > int(before["frame"])  # the same process, patched
        return event


@pytest.fixture(scope="module")
def workspace_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShapeApp]:
    """shape_workspace's app, run from its member directory."""
    app = ShapeApp(copy_app("shape_workspace", tmp_path_factory.mktemp("shapes")) / "ws" / "app")
    app.session.start()
    yield app
    app.session.stop()
    assert not app.schema_problems


@pytest.fixture(scope="module")
def package_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShapeApp]:
    """shape_package's main binary, with the `loud` feature and SHAPES_FLAVOR=mild set
    for its build."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SHAPES_FLAVOR", "mild")
        app = ShapeApp(
            copy_app("shape_package", tmp_path_factory.mktemp("shapes")), bin_name="shapes", features=["loud"]
        )
        app.session.start()
    yield app
    app.session.stop()
    assert not app.schema_problems


# -- library members of every crate type, and dependencies --------------------------------


def test_a_dylib_member_is_linked_from_its_rlib_and_patched(workspace_app):
    event = workspace_app.patch_and_see("../dyl/src/lib.rs", '"dyl-1"', '"dyl-2"', "dyl", "dyl-2")
    assert event["functions"] == ["dyl::word"] and event["crates"] == ["dyl", "app"]


def test_a_cdylib_member_that_is_also_a_lib_is_patched(workspace_app):
    event = workspace_app.patch_and_see("../cdy/src/lib.rs", '"cdy-1"', '"cdy-2"', "cdy", "cdy-2")
    assert event["functions"] == ["cdy::word"] and event["crates"] == ["cdy", "app"]


def test_a_staticlib_member_that_is_also_an_rlib_is_patched(workspace_app):
    event = workspace_app.patch_and_see("../sta/src/lib.rs", '"sta-1"', '"sta-2"', "sta", "sta-2")
    assert event["functions"] == ["sta::word"] and event["crates"] == ["sta", "app"]


def test_library_members_of_every_crate_type_typed_in_are_patched_from_a_speculative_build(workspace_app):
    """The editor's speculative builds (issue 18) compile a dylib, a cdylib and a staticlib
    member with the binary after it, as their saves do."""
    for member in ("dyl", "cdy", "sta"):
        path = workspace_app.crate.parent / member / "src" / "lib.rs"
        typed = re.sub(rf'"{member}-\w+"', f'"{member}-typed"', path.read_text())
        assert workspace_app.session.speculate({path: typed})
        mark = workspace_app.mark()
        path.write_text(typed)  # the save waits for the build if it is still running
        event = workspace_app.patch()
        assert event["speculative"] is True and event["crates"] == [member, "app"]
        workspace_app.wait_line(lambda s, m=member: fields(s).get(m) == f"{m}-typed", after=mark)


def test_a_target_specific_dependency_member_is_patched(workspace_app):
    event = workspace_app.patch_and_see(
        "../linuxonly/src/lib.rs", '"linux-1"', '"linux-2"', "linux", "linux-2"
    )
    assert event["functions"] == ["linuxonly::word"] and event["crates"] == ["linuxonly", "app"]


def test_an_app_at_opt_level_0_with_dependencies_at_opt_level_3_is_patched(workspace_app):
    # vendor/fastmath is outside the workspace: `[profile.dev.package."*"] opt-level = 3` builds it.
    event = workspace_app.patch_and_see(
        "src/main.rs", "fastmath::scale(3)", "fastmath::scale(5)", "scaled", "35"
    )
    assert event["functions"] == ["app::scaled"] and event["crates"] == ["app"]


def test_editing_a_path_dependency_outside_the_workspace_is_refused_naming_it(workspace_app):
    # cargo builds vendor/fastmath like a registry crate: no captured command, no patch.
    app = workspace_app
    lib = (app.crate / ".." / ".." / "vendor" / "fastmath" / "src" / "lib.rs").resolve()
    before = lib.read_text()
    running = fields(app.wait_line(lambda s: "scaled=" in s, after=app.mark()))["scaled"]
    lib.write_text(before.replace("x * 7", "x * 9"))
    try:
        event = app.session.patch([lib]).event
    finally:
        lib.write_text(before)
    assert event["event"] == "patch-refused"
    assert (event["rule"], event["symbol"]) == ("HL1006", "fastmath")
    assert event["reason"] == (
        f"fastmath ({lib.parent.parent}) is a path dependency outside the workspace, which Hotline does "
        "not rebuild per save: full rebuild required (or add it to the workspace's members)"
    )
    mark = app.mark()
    assert fields(app.wait_line(lambda s: "scaled=" in s, after=mark))["scaled"] == running  # last good code


def test_hotline_run_watches_a_path_dependency_outside_the_workspace_and_refuses_its_edit(
    tmp_path, hotline_run
):
    root = copy_app("shape_workspace", tmp_path)
    run = hotline_run(root / "ws" / "app")
    run.until(lambda e: e["event"] == "app-output", timeout=240)
    run.watching()
    lib = root / "vendor" / "fastmath" / "src" / "lib.rs"
    lib.write_text(lib.read_text().replace("x * 7", "x * 9"))
    outcome = run.until(lambda e: e["event"] in ("patched", "patch-refused", "no-change", "compile-error"))
    assert (outcome["event"], outcome["rule"], outcome["symbol"]) == ("patch-refused", "HL1006", "fastmath")


def test_editing_the_library_of_a_proc_macro_is_refused_naming_the_macro(workspace_app):
    # macro_support is built for the host alone, without debug info, and that is no reason
    # to refuse the app's build; its edit changes what the macro expands to: a restart.
    app = workspace_app
    app.wait_line(lambda s: fields(s).get("macro") == "macro-1")
    app.edit('"macro-1"', '"macro-2"', file="../macro_support/src/lib.rs")
    event = app.patch("patch-refused")
    assert (event["rule"], event["symbol"]) == ("HL1006", "derive")
    assert event["reason"] == "proc-macro crate derive changed: full rebuild required"
    mark = app.mark()
    assert fields(app.wait_line(lambda s: "macro=" in s, after=mark))["macro"] == "macro-1"


def test_two_copies_of_an_app_sharing_a_cargo_target_dir_run_and_are_patched_side_by_side(
    tmp_path, monkeypatch
):
    shared = tmp_path / "shared-target"
    monkeypatch.setenv("CARGO_TARGET_DIR", str(shared))
    monkeypatch.delenv("HOTLINE_TARGET_DIR", raising=False)
    copies = [ShapeApp(copy_app("counter", tmp_path / name)) for name in ("first", "second")]
    started: list[ShapeApp] = []
    try:
        for app in copies:
            app.session.start()  # the second is not refused as "already under another Hotline"
            started.append(app)
        first, second = copies
        assert first.session.target_dir.parent == second.session.target_dir.parent == shared / "hotline"
        for app, text in ((first, "first copy"), (second, "second copy")):
            app.edit('"hello"', f'"{text}"')
            mark = app.mark()
            assert app.patch()["functions"] == ["counter::greeting"]
            app.wait_line(lambda s, t=text: s.startswith(f"{t} frame="), after=mark)
        assert not [s for s in first.lines if s.startswith("second copy")]
    finally:
        for app in started:
            app.session.stop()
    assert not [p for app in copies for p in app.schema_problems]


def test_a_dependency_built_as_a_rust_dylib_is_refused_naming_the_libraries(tmp_path):
    # As Bevy's dynamic_linking feature does: the executable would load libfastmath.so and
    # std's own shared library, outside the executable and out of the patches' reach.
    root = copy_app("shape_workspace", tmp_path)
    manifest = root / "vendor" / "fastmath" / "Cargo.toml"
    manifest.write_text(manifest.read_text() + '\n[lib]\ncrate-type = ["dylib"]\n')
    events: list[dict] = []
    session = Session(root / "ws" / "app", events.append)
    try:
        with pytest.raises(HotlineError) as refused:
            session.start()
    finally:
        session.stop()
    assert re.search(
        r"= note: hotline: Hotline cannot patch an executable that loads Rust dylibs \(libfastmath\.so, "
        r"libstd-[0-9a-f]+\.so\): their code lies outside the executable, where patches do not reach, "
        r"and only `cargo run` knows where to find them\. A dependency is built as "
        r'crate-type = \["dylib"\] \(the dynamic_linking feature of Bevy, say\) or std is linked '
        r"dynamically \(-C prefer-dynamic\): turn that off for the Hotline build\n",
        _ANSI.sub("", str(refused.value)),
    ), refused.value
    assert not [e for e in events if e["event"] in ("app-started", "engine-error")]


def test_hotline_run_at_a_workspace_root_runs_its_default_member(tmp_path, hotline_run):
    root = copy_app("shape_workspace", tmp_path) / "ws"  # members app and tool, default-members = ["app"]
    run = hotline_run(root)
    started = run.until(lambda e: e["event"] == "app-started")
    assert Path(started["executable"]).name.startswith("app-"), started
    line = run.until(lambda e: e["event"] == "app-output")["line"]
    assert line.startswith("frame=1 dyl=dyl-1 "), line


# -- one package: edition 2024, generated code, #[path], included files, its library ------


def test_an_edition_2024_main_that_includes_generated_code_is_patched(package_app):
    event = package_app.patch_and_see("src/main.rs", '"main-1"', '"main-2"', "main", "main-2")
    assert event["functions"] == ["shapes::main_word"]
    assert fields(package_app.lines[-1])["gen"] == "gen-1"  # the generated code is still there


def test_editing_the_file_a_path_module_points_to_is_patched(package_app):
    event = package_app.patch_and_see("src/extra/renamed.rs", '"path-1"', '"path-2"', "path", "path-2")
    assert event["functions"] == ["shapes::helper::word"]


def test_editing_an_include_str_file_patches_its_new_text(package_app):
    text = package_app.crate / "assets" / "greeting.txt"
    before = fields(package_app.wait_line(lambda s: "text=" in s))
    text.write_text("text-2")
    mark = package_app.mark()
    outcome = package_app.session.patch([text])  # as a front end passes the saved file
    assert outcome.kind == "patched" and outcome.event["functions"] == ["shapes::text"], outcome.event
    after = fields(package_app.wait_line(lambda s: fields(s).get("text") == "text-2", after=mark))
    assert int(after["frame"]) > int(before["frame"])


def test_an_include_str_file_saved_is_taken_along_by_the_next_rust_save_as_in_the_editors(package_app):
    """The editors act on saves of Rust files only: a saved `assets/*.txt` goes in with the
    next `.rs` save, which is all they pass to the engine."""
    text = package_app.crate / "assets" / "greeting.txt"
    text.write_text("text-editor")
    main = package_app.crate / "src" / "main.rs"
    word = fields(package_app.lines[-1])["main"]  # whatever an earlier test patched in
    edit_file(main, f'"{word}"', '"main-editor"')
    outcome = package_app.session.patch([main])
    assert outcome.kind == "patched", outcome.event
    assert sorted(outcome.event["functions"]) == ["shapes::main_word", "shapes::text"], outcome.event
    after = fields(package_app.wait_line(lambda s: "text=" in s, after=package_app.mark()))
    assert (after["text"], after["main"]) == ("text-editor", "main-editor"), after


def test_editing_an_include_bytes_file_patches_its_new_bytes(package_app):
    blob = package_app.crate / "assets" / "blob.bin"
    before = fields(package_app.wait_line(lambda s: "bytes=" in s))
    blob.write_bytes(b"bytes-2")
    mark = package_app.mark()
    outcome = package_app.session.patch([blob])
    assert outcome.kind == "patched" and outcome.event["functions"] == ["shapes::bytes"], outcome.event
    after = fields(package_app.wait_line(lambda s: fields(s).get("bytes") == "bytes-2", after=mark))
    assert int(after["frame"]) > int(before["frame"])


def test_a_function_behind_an_enabled_feature_is_patched(package_app):
    event = package_app.patch_and_see("src/main.rs", '"loud-1"', '"loud-2"', "volume", "loud-2")
    assert event["functions"] == ["shapes::volume"]


def test_a_patch_compiles_with_the_environment_of_the_fat_build(package_app, monkeypatch):
    # option_env!/env! read at compile time: a patch replays the fat build's rustc command,
    # environment included, so every crate of the app agrees on the value until a restart.
    monkeypatch.setenv("SHAPES_FLAVOR", "hot")
    flavor = 'option_env!("SHAPES_FLAVOR").unwrap_or("none")'
    patched = 'concat!("patched-", env!("SHAPES_FLAVOR"))'  # "hot" here, no value at all: wrong
    event = package_app.patch_and_see("src/main.rs", flavor, patched, "flavor", "patched-mild")
    assert event["functions"] == ["shapes::line"]


def test_the_library_of_the_binarys_own_package_is_patched(package_app):
    # src/lib.rs and src/main.rs are both the crate `shapes`: the library must not be taken
    # for the binary, nor left out of the app's crates.
    event = package_app.patch_and_see("src/lib.rs", '"lib-1"', '"lib-2"', "lib", "lib-2")
    assert event["functions"] == ["shapes::library_word"] and event["crates"] == ["shapes", "shapes"]


# -- binaries and examples ------------------------------------------------------------------


def test_without_bin_the_error_lists_every_binary_of_the_package(tmp_path):
    crate = copy_app("shape_package", tmp_path)
    with pytest.raises(HotlineError) as refused:
        Session(crate, lambda e: None)
    assert str(refused.value) == (
        f"{crate / 'Cargo.toml'} has several binaries (custom, other, shapes): pick one with --bin"
    )


def test_a_bin_at_a_custom_path_is_patched(tmp_path):
    app = ShapeApp(copy_app("shape_package", tmp_path), bin_name="custom")
    app.session.start()
    try:
        event = app.patch_and_see("tools/custom.rs", '"custom-1"', '"custom-2"', "custom", "custom-2")
        assert event["functions"] == ["custom::word"]
    finally:
        app.session.stop()
    assert not app.schema_problems


def test_an_example_is_refused_with_how_to_make_it_a_binary(tmp_path):
    crate = copy_app("shape_package", tmp_path)
    with pytest.raises(HotlineError) as refused:
        Session(crate, lambda e: None, bin_name="demo")
    assert str(refused.value) == (
        "demo is an example (examples/demo.rs), and Hotline runs binary targets only: declare it as "
        f'one too, [[bin]] name = "demo" path = "examples/demo.rs" in {crate / "Cargo.toml"} (its '
        "dev-dependencies must then be dependencies), or move it to src/bin/"
    )


# -- what needs a restart: build.rs, and a version in Cargo.toml ---------------------------


def test_hotline_run_relaunches_with_the_new_generated_code_when_build_rs_changes(tmp_path, hotline_run):
    crate = copy_app("shape_package", tmp_path)
    run = hotline_run(crate, ["--bin", "shapes"])
    first = run.until(lambda e: e["event"] == "app-started")
    run.until(lambda e: e["event"] == "app-output")
    run.watching()
    build_rs = crate / "build.rs"
    build_rs.write_text(build_rs.read_text().replace("gen-1", "gen-2"))
    restarting = run.until(lambda e: e["event"] in ("restarting", "patch-started", "app-started"))
    assert restarting == {"event": "restarting", "reason": "Cargo.toml or build.rs changed"}
    second = run.until(lambda e: e["event"] == "app-started")
    assert second["pid"] != first["pid"]
    line = run.until(lambda e: e["event"] == "app-output")["line"]
    assert fields(line)["frame"] == "1" and fields(line)["gen"] == "gen-2", line


def test_hotline_run_relaunches_with_the_new_version_when_cargo_toml_bumps_it(tmp_path, hotline_run):
    crate = copy_app("shape_package", tmp_path)
    run = hotline_run(crate, ["--bin", "shapes"])
    first = run.until(lambda e: e["event"] == "app-started")
    run.until(lambda e: e["event"] == "app-output")
    run.watching()
    manifest = crate / "Cargo.toml"
    manifest.write_text(manifest.read_text().replace('version = "0.1.0"', 'version = "0.2.0"'))
    restarting = run.until(lambda e: e["event"] in ("restarting", "patch-started", "app-started"))
    assert restarting == {"event": "restarting", "reason": "Cargo.toml or build.rs changed"}
    second = run.until(lambda e: e["event"] == "app-started")
    assert second["pid"] != first["pid"]
    line = run.until(lambda e: e["event"] == "app-output")["line"]
    assert fields(line)["frame"] == "1" and fields(line)["version"] == "0.2.0", line


# -- profiles that cannot be patched safely ------------------------------------------------


def _refused_build(crate: Path, **options: object) -> tuple[str, list[dict]]:
    """The error a start fails with, and the events it sent."""
    events: list[dict] = []
    session = Session(crate, events.append, **options)  # type: ignore[arg-type]
    try:
        with pytest.raises(HotlineError) as refused:
            session.start()
    finally:
        session.stop()
    return str(refused.value), events


def test_a_release_profile_is_refused_naming_debug_info_and_debug_assertions(tmp_path):
    crate = copy_app("plain", tmp_path)
    message, events = _refused_build(crate, profile="release")
    why = (
        "the `release` profile builds plain with no debug info, and Hotline needs the types in the "
        "debug info to check that an edit keeps each type's layout (HL1002): it does not patch such "
        "a build; debug assertions are off too, which compiles hotline::call away"
    )
    fix = (
        "run the dev profile (drop --release or --profile release); to make it faster, optimize "
        'the dependencies only: [profile.dev.package."*"] opt-level = 3'
    )
    assert (
        message
        == f"the fat build failed:\nerror[HL1011]: {why}\n  --> {crate / 'Cargo.toml'}:1:1\n  = help: {fix}\n\n"
    )
    finished = next(e for e in events if e["event"] == "build-finished")
    (diagnostic,) = finished["diagnostics"]
    assert (finished["ok"], diagnostic["level"], diagnostic["message"]) == (False, "error", why)
    assert diagnostic["code"]["code"] == "HL1011"
    assert diagnostic["spans"][0]["file_name"] == str(crate / "Cargo.toml")
    assert not [e for e in events if e["event"] in ("app-started", "engine-error")]


@pytest.mark.parametrize(
    ("setting", "kind", "fix"),
    [
        (
            "debug = 1",
            "debug = 1",
            "set `debug = true` (the default) in [profile.dev] of the workspace's Cargo.toml",
        ),
        (
            'debug = "line-tables-only"',
            "debug = line-tables-only",
            "set `debug = true` (the default) in [profile.dev] of the workspace's Cargo.toml",
        ),
        (
            'split-debuginfo = "packed"',
            "split-debuginfo = packed, which moves the debug info out of its objects",
            "remove split-debuginfo from [profile.dev] (on Linux it is off by default)",
        ),
    ],
    ids=["debug-1", "line-tables-only", "split-debuginfo"],
)
def test_a_dev_profile_with_partial_or_split_debug_info_is_refused_as_hl1011(tmp_path, setting, kind, fix):
    crate = copy_app("plain", tmp_path)
    manifest = crate / "Cargo.toml"
    manifest.write_text(manifest.read_text() + f"\n[profile.dev]\n{setting}\n")
    message, events = _refused_build(crate)
    line = manifest.read_text().splitlines().index("[profile.dev]") + 1
    why = (
        f"the `dev` profile builds plain with {kind}, and Hotline needs the types in the debug info "
        "to check that an edit keeps each type's layout (HL1002): it does not patch such a build"
    )
    assert (
        message
        == f"the fat build failed:\nerror[HL1011]: {why}\n  --> {manifest}:{line}:1\n  = help: {fix}\n\n"
    )
    assert not [e for e in events if e["event"] in ("app-started", "engine-error")]


def test_a_dev_profile_without_debug_info_is_refused_at_its_profile_table(tmp_path):
    crate = copy_app("plain", tmp_path)
    manifest = crate / "Cargo.toml"
    manifest.write_text(manifest.read_text() + "\n[profile.dev]\ndebug = false\n")
    message, events = _refused_build(crate)
    line = manifest.read_text().splitlines().index("[profile.dev]") + 1
    assert message.startswith(
        "the fat build failed:\nerror[HL1011]: the `dev` profile builds plain with no debug info, and Hotline "
        "needs the types in the debug info to check that an edit keeps each type's layout (HL1002): "
        f"it does not patch such a build\n  --> {manifest}:{line}:1\n  = help: set `debug = true` "
        "(the default) in [profile.dev] of the workspace's Cargo.toml"
    ), message
    assert not [e for e in events if e["event"] in ("app-started", "engine-error")]


def test_a_profile_that_strips_symbols_is_patched(live_app):
    # `strip = true` reaches the link as --strip-all, which the fat link leaves out.
    def stripped(app_dir: Path) -> None:
        manifest = app_dir / "Cargo.toml"
        manifest.write_text(manifest.read_text() + "\n[profile.dev]\nstrip = true\n")

    app = live_app("plain", prepare=stripped)
    app.wait_line(lambda s: s.startswith("tick="))
    app.edit('"hello"', '"stripped"')
    mark = app.mark()
    assert app.patch()["functions"] == ["plain::greeting"]
    app.wait_line(lambda s: s.endswith("greeting=stripped"), after=mark)


def test_a_dev_run_after_a_refused_release_build_patches_as_before(tmp_path):
    # The release build compiled the libraries before the refusal: what it captured of them
    # must not stand for the dev build, whose outputs cargo finds fresh.
    crate = copy_app("shape_workspace", tmp_path) / "ws" / "app"
    first = ShapeApp(crate)
    first.session.start()
    first.session.stop()
    _refused_build(crate, profile="release")
    app = ShapeApp(crate)
    app.session.start()
    try:
        event = app.patch_and_see("../dyl/src/lib.rs", '"dyl-1"', '"dyl-2"', "dyl", "dyl-2")
        assert event["functions"] == ["dyl::word"] and event["locations"][0]["line"] == 3
    finally:
        app.session.stop()
    assert not app.schema_problems


def test_hotline_run_patches_on_a_save_of_an_include_str_file(tmp_path: Path, hotline_run) -> None:
    """The CLI watches what the build read, not only `.rs` files: a saved `assets/*.txt`
    that `include_str!` takes is patched like a source."""
    crate = copy_app("shape_package", tmp_path)
    run = hotline_run(crate, ["--bin", "shapes", "--features", "loud"])
    run.until(lambda e: e["event"] == "app-output" and "text=" in e["line"], timeout=240)
    (crate / "assets" / "greeting.txt").write_text("text-cli")
    patched = run.until(lambda e: e["event"] in ("patched", "patch-refused", "compile-error", "no-change"))
    assert patched["event"] == "patched" and patched["functions"] == ["shapes::text"], patched
    run.until(lambda e: e["event"] == "app-output" and "text=text-cli" in e["line"], timeout=10)
