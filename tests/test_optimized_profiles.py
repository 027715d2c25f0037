"""An optimized dev profile never gives a `patched` event with the old behaviour (issue 14).

At opt-level >= 1 rustc inlines the edited function into its callers (here `tick` and
`greeting` into the safe point's `hot_call` instance). Each copy whose code changed is
redirected by its entry jump, so the app prints the new text right after the patch.
"""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("level", [1, 2, 3])
def test_an_edit_under_an_optimized_dev_profile_runs_right_after_patched(live_app, level):
    def optimized(app_dir):
        manifest = app_dir / "Cargo.toml"
        manifest.write_text(manifest.read_text() + f"\n[profile.dev]\nopt-level = {level}\n")

    app = live_app("counter", prepare=optimized)
    app.wait_line(lambda s: s.startswith("hello frame="))
    app.edit('"hello"', '"patched-text"')
    event = app.patch()
    assert "counter::greeting" in event["functions"] or "counter::tick" in event["functions"]
    mark = app.mark()
    # The next tick (100 ms) must print the new text: any old line after `patched` fails.
    line = app.wait_line(lambda s: "frame=" in s, after=mark)
    assert line.startswith("patched-text frame="), line


def test_an_edit_inlined_into_the_running_main_is_refused_with_hl1010_not_reported_patched(live_app):
    """`plain` has no safe point: at opt-level 3, `tick` and `greeting` are inlined into
    `main`'s endless loop, so the edit changes only `main`, which never runs again."""

    def optimized(app_dir):
        manifest = app_dir / "Cargo.toml"
        manifest.write_text(manifest.read_text() + "\n[profile.dev]\nopt-level = 3\n")

    app = live_app("plain", prepare=optimized)
    app.wait_line(lambda s: s.startswith("tick="))
    app.edit('"hello".to_string()', '"optimized".to_string()')
    event = app.patch(expect="patch-refused")
    assert event["rule"] == "HL1010"
    assert event["reason"] == (
        "plain::main changed (an edit to main, or to a function the compiler inlined into it): "
        "main is running and never returns, so its new code never runs: restart required"
    )
    mark = app.mark()
    assert "greeting=hello" in app.wait_line(lambda s: s.startswith("tick="), after=mark)
