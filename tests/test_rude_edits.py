"""Edits that cannot be patched safely are refused (or warned about) with a rule id, the
app keeps running its last good code, and a restart runs the new code (issue 4)."""

from __future__ import annotations

from conftest import fields

PLAYER = "struct Player {\n    name: String,\n    hp: u32,\n}"


def _line_of(app, text: str) -> int:
    return (app.crate / "src" / "main.rs").read_text().splitlines().index(text) + 1


def test_layout_change_of_a_struct_in_a_static_is_refused_then_runs_after_restart(live_app):
    app = live_app("probe")
    app.wait_line(lambda s: "players=ann:10" in s)
    app.edit(PLAYER, "struct Player {\n    name: String,\n    shield: u64,\n    hp: u32,\n}")
    app.edit('Player { name: "ann".into(), hp: 10 }', 'Player { name: "ann".into(), shield: 5, hp: 10 }')
    app.edit('format!("{}:{}", self.name, self.hp)', 'format!("{}:{}+{}", self.name, self.hp, self.shield)')
    event = app.patch(expect="patch-refused")
    assert event["rule"] == "HL1002"
    assert event["symbol"] == "probe::Player"
    layout = next(r for r in event["rude_edits"] if r["symbol"] == "probe::Player")
    assert layout["message"].startswith("struct Player: size 32 → 40")
    assert "field shield added at" in layout["message"]
    assert layout["file"].endswith("src/main.rs") and layout["line"] == _line_of(app, "struct Player {")
    mark = app.mark()
    app.wait_line(lambda s: "players=ann:10 " in s, after=mark)  # old code, old data, still fine
    app.session.restart()
    mark = app.mark()
    app.wait_line(lambda s: "players=ann:10+5" in s, after=mark)


def test_method_body_edit_on_the_struct_in_a_static_still_patches(live_app):
    app = live_app("probe")
    before = fields(app.wait_line(lambda s: "players=ann:10" in s))
    app.edit('format!("{}:{}", self.name, self.hp)', 'format!("{}={}hp", self.name.to_uppercase(), self.hp)')
    mark = app.mark()
    event = app.patch()
    assert (
        "<probe::Player>::describe" in event["functions"] or "probe::Player::describe" in event["functions"]
    )
    after = fields(app.wait_line(lambda s: "players=ANN=10hp" in s, after=mark))
    assert int(after["hits"]) > int(before["hits"])


def test_closure_given_to_call_that_changes_its_captures_is_refused(live_app):
    app = live_app("probe")
    app.wait_line(lambda s: s.startswith("v=1"))
    app.edit(
        "        let run = std::panic::AssertUnwindSafe(|| hotline::call(|| step(&mut frame)));",
        "        let bonus = 2u64;\n"
        "        let run = std::panic::AssertUnwindSafe(|| hotline::call(|| { step(&mut frame); frame += bonus; }));",
    )
    event = app.patch(expect="patch-refused")
    assert event["rule"] == "HL1001"
    assert "closure_env" in event["symbol"]
    mark = app.mark()
    app.wait_line(lambda s: s.startswith("v=1"), after=mark)


def test_new_thread_local_is_refused(live_app):
    app = live_app("probe")
    app.wait_line(lambda s: s.startswith("v=1"))
    app.edit(
        "fn extra() -> String {\n    String::new()\n}",
        "thread_local! {\n    static OTHER: Cell<u32> = const { Cell::new(0) };\n}\n\n"
        "fn extra() -> String {\n    OTHER.with(|c| c.set(c.get() + 1));\n    OTHER.with(|c| c.get()).to_string()\n}",
    )
    event = app.patch(expect="patch-refused")
    assert event["rule"] == "HL1003"
    assert "OTHER" in event["reason"]
    mark = app.mark()
    app.wait_line(lambda s: "extra= " in s, after=mark)


def test_static_type_change_is_refused(live_app):
    app = live_app("probe")
    app.wait_line(lambda s: s.startswith("v=1"))
    app.edit(
        "static LIMIT: AtomicUsize = AtomicUsize::new(3);",
        "static LIMIT: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(3);",
    )
    event = app.patch(expect="patch-refused")
    assert event["rule"] == "HL1004"
    assert "probe::LIMIT" in event["reason"] and "size 8 → 1" in event["reason"]


def test_static_initializer_change_warns_and_keeps_the_running_value(live_app):
    app = live_app("probe")
    app.wait_line(lambda s: "limit=3" in s)
    app.edit(
        "static LIMIT: AtomicUsize = AtomicUsize::new(3);", "static LIMIT: AtomicUsize = AtomicUsize::new(9);"
    )
    app.edit("fn version() -> u32 {\n    1\n}", "fn version() -> u32 {\n    4\n}")
    event = app.patch()
    assert [w["rule"] for w in event["warnings"]] == ["HL1005"]
    assert "probe::LIMIT" in event["warnings"][0]["message"]
    mark = app.mark()
    line = app.wait_line(lambda s: s.startswith("v=4"), after=mark)
    assert fields(line)["limit"] == "3"


def test_allowed_layout_change_of_a_frame_local_type_patches(live_app):
    app = live_app("probe")
    app.wait_line(lambda s: "stats=" in s)
    app.edit("struct Stats {\n    frames: u64,\n}", "struct Stats {\n    frames: u64,\n    doubled: u64,\n}")
    app.edit(
        "let stats = Stats { frames: *frame };", "let stats = Stats { frames: *frame, doubled: *frame * 2 };"
    )
    app.edit("        stats.frames\n", "        stats.doubled\n")
    event = app.patch(expect="patch-refused")
    assert event["rule"] == "HL1002" and event["symbol"] == "probe::Stats"
    app.session.allow_layout_changes = frozenset({"probe::Stats"})  # the allowLayoutChanges setting
    mark = app.mark()
    app.patch()

    def doubled(line: str) -> bool:
        f = fields(line)
        return "stats" in f and int(f["stats"]) == 2 * int(f["frame"])

    app.wait_line(doubled, after=mark)


def test_main_edited_with_another_function_is_patched_with_an_hl1010_warning(live_app):
    """With other functions edited too, those are patched, and HL1010 says main's new code
    never runs (docs/rude-edits.md)."""
    app = live_app("plain")
    app.wait_line(lambda s: s.startswith("tick="))
    app.edit(
        "std::thread::sleep(Duration::from_millis(50));", "std::thread::sleep(Duration::from_millis(40));"
    )
    app.edit('"hello".to_string()', '"beside main".to_string()')
    mark = app.mark()
    event = app.patch()
    assert sorted(event["functions"]) == ["plain::greeting", "plain::main"], event["functions"]
    (warning,) = [w for w in event["warnings"] if w["rule"] == "HL1010"]
    assert warning["message"].startswith(
        "plain::main changed (an edit to main, or to a function the compiler"
    ), warning
    assert warning["message"].endswith("main is running and never returns, so its new code never runs"), (
        warning
    )
    app.wait_line(lambda s: "greeting=beside main" in s, after=mark)


def test_a_patch_whose_self_check_fails_is_refused_as_hl1094_and_the_next_patch_builds_on_it(live_app):
    """The runtime applied the patch but read back something not in place: the engine never
    reports it as patched, and diffs the next save against what the app now runs. The
    self-check's failure is injected into the app's answer (a real one needs a runtime bug)."""
    app = live_app("plain")
    app.wait_line(lambda s: s.startswith("tick="))
    channel = app.session.running.channel
    send = channel.send_patch

    def failing_self_check(message: dict, timeout: float = 30.0) -> dict:
        return send(message, timeout) | {"self_check": ["1 of 1 entry jumps are not in place"]}

    channel.send_patch = failing_self_check  # type: ignore[method-assign]
    app.edit('"hello".to_string()', '"checked".to_string()')
    event = app.patch(expect="patch-refused")
    assert event["rule"] == "HL1094"
    assert event["reason"] == (
        "the app applied the patch, but its self-check failed (1 of 1 entry jumps are not in place): "
        "restart required"
    )
    assert not [e for e in app.events if e["event"] == "patched"]
    channel.send_patch = send  # type: ignore[method-assign]
    app.edit("fn tick() {", "#[inline(never)]\nfn tick() {")
    app.edit(
        'println!("tick={n} greeting={}", greeting());', 'println!("tick={n} greeting={} next", greeting());'
    )
    mark = app.mark()
    event = app.patch()
    assert event["seq"] == 2 and event["functions"] == ["plain::tick"], event  # greeting is not patched again
    app.wait_line(lambda s: s.endswith(" next") and "greeting=checked" in s, after=mark)
