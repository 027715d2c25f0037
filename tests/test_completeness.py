"""`patched` names what the user edited and the copies that carry the edit (issue 25,
shape 2): at opt-level 1, `bump` is inlined into the closures that `Option::map` and
`Iterator::sum` run, and into those generic instances, compiled in the app's crate."""

from __future__ import annotations

from conftest import fields


def expected(n: int, k: int) -> int:
    """`step(n)` when `bump(x)` is `x + k`."""
    return sum(x + k for x in range(n % 10)) + (n + k) * 2


def test_an_edit_inlined_into_instances_of_cores_generics_runs_and_the_event_names_both(live_app) -> None:
    app = live_app("inlined")
    app.wait_line(lambda s: s.startswith("n="))
    app.edit("x + 1\n", "x + 1000\n")
    event = app.patch()
    assert "inlined::bump" in event["functions"], event
    assert not [f for f in event["functions"] if f.startswith(("core::", "<core::"))], event["functions"]
    assert "core::option::Option<T>::map" in event["carried"], event
    mark = app.mark()
    line = fields(app.wait_line(lambda s: s.startswith("n="), after=mark + 1))
    assert int(line["v"]) == expected(int(line["n"]), 1000), line
