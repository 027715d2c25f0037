"""A headless Bevy app as its users write it (examples/bevy: no Hotline dependency, no
attribute), patched live: its systems, a `par_iter_mut` closure run on the task pool's
threads and an observer run their new code from the next frame, with the world carried on;
what Bevy fixed at start-up (a system's parameters, the schedules, a Startup system that
already ran, a component's layout) is said in Bevy's terms.

Bevy's fat build takes about a minute on two cores: its target directory is cached outside
the clone (test_real_world.CACHE), as the other crates.io examples' are.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from conftest import LiveApp, edit_file, fields
from test_real_world import CACHE

pytestmark = pytest.mark.slow


@pytest.fixture
def bevy(live_app, monkeypatch) -> Callable[[], LiveApp]:
    def start() -> LiveApp:
        monkeypatch.setenv("HOTLINE_TARGET_DIR", str(CACHE / "bevy"))
        app = live_app("bevy")
        frame(app, lambda f: int(f["frame"]) >= 3, timeout=600)  # cold cache: a minute or more
        return app

    return start


def frame(app: LiveApp, pred: Callable[[dict], bool], timeout: float = 10.0, after: int = 0) -> dict:
    """The fields of the first frame line (from `after` on) that satisfies `pred`."""
    line = app.wait_line(lambda s: s.startswith("frame=") and pred(fields(s)), timeout, after)
    return fields(line)


def test_update_system_body_edit_runs_next_frame_with_the_world_carried_on(bevy):
    app = bevy()
    before = frame(app, lambda f: int(f["score"]) >= 1)
    app.edit("label=tick", "label=edited")
    event = app.patch()
    assert event["functions"] == ["bevy_headless::report"]
    assert not [w for w in event["warnings"] if w["rule"] in ("HL1010", "HL1013")]
    mark = app.mark()
    after = frame(app, lambda f: True, after=mark)
    assert after["label"] == "edited"  # the first frame printed after the patch: new code
    # The same world: frames, the score and the bodies' positions went on from where they were.
    assert int(after["frame"]) > int(before["frame"])
    assert int(after["score"]) >= int(before["score"])
    assert int(after["sum_x"]) > int(before["sum_x"])
    assert not app.exits()


def test_par_iter_closure_on_the_task_pool_is_patched_20_times(bevy):
    app = bevy()
    assert frame(app, lambda f: True)["spread"] == "64"  # 64 bodies, y = velocity (1)
    previous = int(frame(app, lambda f: True)["sum_x"])
    for n in range(2, 22):
        app.edit(
            f"position.y = velocity.x{' * ' + str(n - 1) if n > 2 else ''};",
            f"position.y = velocity.x * {n};",
        )
        event = app.patch()
        assert event["functions"] == ["bevy_headless::move_bodies::{{closure}}"], event
        mark = app.mark()
        # Two frames on, every body was moved by the new closure on the pool's threads.
        seen = frame(app, lambda f, n=n: f["spread"] == str(64 * n), timeout=5, after=mark)
        assert int(seen["sum_x"]) > previous  # the positions carried on
        previous = int(seen["sum_x"])
    assert not app.exits()


def test_observer_edit_runs_on_the_next_trigger(bevy):
    app = bevy()
    before = int(frame(app, lambda f: int(f["score"]) >= 2)["score"])
    app.edit("score.points += scored.points;", "score.points += scored.points * 100;")
    event = app.patch()
    assert event["functions"] == ["bevy_headless::on_scored"]
    mark = app.mark()
    after = int(frame(app, lambda f: int(f["score"]) >= 100, after=mark)["score"])
    # One trigger of the new observer on top of the old score (and the few points the old
    # one added between that line and the patch): the resource carried on.
    assert before + 100 <= after < before + 200, (before, after)


def test_system_whose_parameters_changed_is_refused_naming_the_system_registered_at_start_up(bevy):
    app = bevy()
    edit_file(
        app.crate / "src/main.rs",
        "fn report(frame: Res<FrameCount>,",
        "fn report(time: Res<Time>, frame: Res<FrameCount>,",
        "label=tick",
        "label={:.1}s",
        "frame.0, score.points);",
        "frame.0, score.points, time.elapsed_secs());",
    )
    event = app.patch("patch-refused")
    reason = event["reason"]
    assert event["rule"] == "HL1010"
    assert "the parameters of the Bevy system bevy_headless::report changed" in reason, reason
    assert "(Res<FrameCount>, Res<Score>, Query<&Position>) → (Res<Time>, Res<FrameCount>," in reason, reason
    assert "Bevy registered it at start-up with its old parameters" in reason, reason
    assert reason.endswith("restart required"), reason
    assert "main changed" not in reason  # what the user did, not what the compiler did
    mark = app.mark()
    assert frame(app, lambda f: True, after=mark)["label"] == "tick"  # the last good code runs


def test_system_added_to_the_schedule_needs_a_restart_and_is_named(bevy):
    app = bevy()
    edit_file(
        app.crate / "src/main.rs",
        "/// Update: one line a frame.",
        'fn greet() {\n    println!("hello from a new system");\n}\n\n/// Update: one line a frame.',
        ".add_systems(Startup, spawn_bodies)",
        ".add_systems(Startup, spawn_bodies)\n        .add_systems(Update, greet)",
    )
    event = app.patch("patch-refused")
    reason = event["reason"]
    assert event["rule"] == "HL1010"
    assert "the Bevy system bevy_headless::greet was added to the Update schedule" in reason, reason
    assert "once, at start-up" in reason and reason.endswith("restart required"), reason
    assert not [line for line in app.lines if "hello from a new system" in line]


def test_component_layout_change_is_refused_naming_the_component(bevy):
    app = bevy()
    edit_file(
        app.crate / "src/main.rs",
        "struct Position {\n    x: i64,\n    y: i64,\n}",
        "struct Position {\n    x: i64,\n    y: i64,\n    z: i64,\n}",
        "Position { x: 0, y: 0 }",
        "Position { x: 0, y: 0, z: 0 }",
    )
    event = app.patch("patch-refused")
    assert event["rule"] == "HL1002"
    assert event["symbol"] == "bevy_headless::Position"
    assert event["reason"].startswith("Bevy component bevy_headless::Position: "), event["reason"]
    assert "every entity's Position with the old layout" in event["reason"]
    mark = app.mark()
    assert frame(app, lambda f: True, after=mark)["spread"] == "64"  # the last good code runs


def test_startup_system_edit_says_it_ran_at_start_up_and_needs_a_restart(bevy):
    app = bevy()
    app.edit('println!("startup bodies={BODIES}");', 'println!("startup bodies={BODIES} edited");')
    event = app.patch()
    assert event["functions"] == ["bevy_headless::spawn_bodies"]
    (warning,) = [w for w in event["warnings"] if w["rule"] == "HL1013"]
    assert warning["message"] == (
        "the Bevy system bevy_headless::spawn_bodies of the Startup schedule ran once at start-up "
        "and Bevy will not run it again: its new code takes effect after a restart (restart to apply)"
    )
    assert warning["file"] == "src/main.rs" and warning["line"] == 37  # `fn spawn_bodies`
    # An Update system's edit says nothing of the kind.
    app.edit("label=tick", "label=edited")
    assert not [w for w in app.patch()["warnings"] if w["rule"] == "HL1013"]
