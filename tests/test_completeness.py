"""`patched` names what the user edited and the copies that carry the edit (issue 25,
shape 2): at opt-level 1, `bump` is inlined into the closures that `Option::map` and
`Iterator::sum` run, and into those generic instances, compiled in the app's crate."""

from __future__ import annotations

import time

from conftest import fields
from hotline.engine.report.receipts import NOT_RUN_AFTER


def expected(n: int, k: int, offset: int = 1003) -> int:
    """`step(n)` when `bump(x)` is `x + k`."""
    return sum(x + k for x in range(n % 10)) + (n + k) * 2 + offset


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


def test_an_edit_that_runs_only_inlined_into_other_copies_is_reported_ran_through_them_not_hl1013(
    live_app,
) -> None:
    """The own new copies of `bump` and of the closures are never called: at opt-level 1
    their code runs inside `step`, which inlined `Option::map` and `Iterator::sum`. Their
    receipt is `ran`, naming `step`, not a false 'has not been called since the patch:
    restart to apply' (HL1013). The `.map` closure is missing from `step`'s own inlining
    records (LLVM dropped it): it is found through `map_fold::{{closure}}`'s copy."""
    app = live_app("inlined")
    app.wait_line(lambda s: s.startswith("n="))
    app.edit("x + 1\n", "x + 1000\n")
    event = app.patch()
    time.sleep(NOT_RUN_AFTER + 1.5)  # past the time a not-run would be reported
    with app._cv:
        ran = [e for e in app.events if e["event"] == "ran" and e["seq"] == event["seq"]]
        not_run = [e for e in app.events if e["event"] == "not-run"]
    assert not not_run, not_run
    assert sorted(f for e in ran for f in e["functions"]) == sorted(event["functions"]), (ran, event)
    inlined = {f: hosts for e in ran for f, hosts in e.get("inlined_into", {}).items()}
    assert inlined == {"inlined::bump": ["inlined::step"], "inlined::step::{{closure}}": ["inlined::step"]}, (
        ran
    )


def test_a_constant_function_folded_into_its_caller_is_patched_and_never_reported_not_run(live_app) -> None:
    """`offset()`, called by a closure `Option::map` runs, is folded into `step` at opt-level
    1 with that closure: their own copies are patched but nothing calls them, and no debug
    info says where their code went. The new value shows; neither gets 'not called since
    the patch: restart to apply' (HL1013), which would be false."""
    app = live_app("inlined")
    app.wait_line(lambda s: s.startswith("n="))
    app.edit("    1003\n", "    1030\n")
    event = app.patch()
    assert "inlined::offset" in event["functions"], event
    mark = app.mark()
    line = fields(app.wait_line(lambda s: s.startswith("n="), after=mark + 1))
    assert int(line["v"]) == expected(int(line["n"]), 1, offset=1030), line
    time.sleep(NOT_RUN_AFTER + 1.5)  # past the time a not-run would be reported
    with app._cv:
        assert not [e for e in app.events if e["event"] == "not-run"]
