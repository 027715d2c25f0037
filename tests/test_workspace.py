"""Edits in a library crate of the workspace patch the app (issue 7, workspace crates)."""

from __future__ import annotations

from conftest import fields


def test_library_crate_edit_patches_with_its_statics_and_thread_locals_intact(live_app):
    app = live_app("workspace", member="app")
    before = fields(app.wait_line(lambda s: s.startswith("lib-v1") and int(fields(s)["tls"]) >= 3))
    app.edit(
        'format!("lib-v1 calls={calls} tls={mine}")',
        'format!("lib-v2 calls={calls} tls={mine}")',
        file="../engine/src/lib.rs",
    )
    mark = app.mark()
    event = app.session.patch([app.crate.parent / "engine" / "src" / "lib.rs"])
    assert event.kind == "patched", event.event
    assert event.event["crates"] == ["engine", "app"]
    assert "engine::label" in event.event["functions"]
    after = fields(app.wait_line(lambda s: s.startswith("lib-v2"), after=mark))
    assert int(after["calls"]) > int(before["calls"])  # the library's static kept its value
    assert int(after["tls"]) > int(before["tls"])  # and so did its thread-local (general-dynamic TLS)


def test_generic_library_function_instantiated_in_the_binary_picks_up_the_edit(live_app):
    app = live_app("workspace", member="app")
    app.wait_line(lambda s: "wrapped=[7]" in s)
    app.edit('format!("[{value}]")', 'format!("<<{value}>>")', file="../engine/src/lib.rs")
    mark = app.mark()
    app.patch()
    app.wait_line(lambda s: "wrapped=<<7>>" in s, after=mark)


def test_edit_in_a_crate_the_binary_does_not_use_does_nothing_and_says_so(live_app):
    app = live_app("workspace", member="app")
    app.wait_line(lambda s: s.startswith("lib-v1"))
    app.edit("    0\n", "    1\n", file="../unused/src/lib.rs")
    outcome = app.session.patch([app.crate.parent / "unused" / "src" / "lib.rs"])
    assert outcome.kind == "no-change"
    assert "is not part of app's build" in outcome.event["message"]


def test_proc_macro_crate_edit_is_refused_and_the_app_keeps_its_code(live_app):
    app = live_app("workspace", member="app")
    app.wait_line(lambda s: s.endswith("stamp=stamp-v1"))
    app.edit('"\\"stamp-v1\\""', '"\\"stamp-v2\\""', file="../stamp/src/lib.rs")
    outcome = app.session.patch([app.crate.parent / "stamp" / "src" / "lib.rs"])
    assert outcome.kind == "patch-refused", outcome.event
    assert (outcome.event["rule"], outcome.event["symbol"]) == ("HL1006", "stamp")
    mark = app.mark()
    app.wait_line(lambda s: s.endswith("stamp=stamp-v1"), after=mark)  # still running, unchanged
    app.session.restart()
    app.wait_line(lambda s: s.endswith("stamp=stamp-v2"), timeout=60)
