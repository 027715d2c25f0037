"""A patch never crashes the app: a function whose ABI changed keeps its old callers on its
old version (issue 24, docs/rude-edits.md HL1007).

`abi_shapes` calls `picked` (an `impl Iterator` built with `filter`) and `adder` (an
`impl Fn`) from the loop in `main`, which never returns. When an edit makes the returned
closure capture a value, the hidden concrete type grows; before the ABI check, the loop's
old frame was sent into the new body through its entry jump with a return slot of the
old size, and the app aborted (`picked`) or died of SIGSEGV (`adder`).
"""

from __future__ import annotations

import time

from conftest import LiveApp, fields
from hotline.engine.analyse.demangle import demangle


def lines_after(app: LiveApp, mark: int, count: int) -> list[dict[str, str]]:
    """The fields of `count` lines printed after `mark`."""
    return [fields(s) for s in app.wait_lines(lambda s: s.startswith("n="), count, timeout=15, after=mark)]


def abi_warning(event: dict, function: str) -> dict:
    """The patch's one HL1007 warning on `function`."""
    (warning,) = [
        w for w in event["warnings"] if w["rule"] == "HL1007" and demangle(w.get("symbol", "")) == function
    ]
    return warning


def test_a_filter_closure_that_now_captures_a_value_leaves_the_loop_on_old_code_and_names_picked(
    live_app,
) -> None:
    app = live_app("abi_shapes")
    app.wait_line(lambda s: s.startswith("n="))
    app.edit("|x| **x % 2 == 0", "{\n        let k = 3;\n        move |x| **x % k == 0\n    }")
    event = app.patch()
    warning = abi_warning(event, "abi_shapes::picked")
    assert "return value `Filter<" in warning["message"], warning
    assert "(size 16 → 24)" in warning["message"], warning
    assert (warning["file"], warning["line"]) == ("src/main.rs", 9)
    mark = app.mark()
    time.sleep(1.0)  # the loop keeps calling `picked` from its old frame
    after = lines_after(app, mark, 20)
    assert {line["sum"] for line in after} == {"30"}  # 2 + 4 + 6 + 8 + 10: the old filter, intact
    assert not app.exits()


def test_an_impl_fn_that_now_captures_a_second_value_leaves_stored_closures_intact_and_names_adder(
    live_app,
) -> None:
    app = live_app("abi_shapes")
    app.wait_line(lambda s: s.startswith("n=") and int(fields(s)["n"]) > 4)
    app.edit("move |x| x + i", "{\n        let j = i * 1_000_000;\n        move |x| x + i + j\n    }")
    event = app.patch()
    warning = abi_warning(event, "abi_shapes::adder")
    assert "return value `{closure_env#0}`" in warning["message"], warning
    assert "(size 8 → 16)" in warning["message"], warning
    mark = app.mark()
    time.sleep(1.0)
    for line in lines_after(app, mark, 20):
        n = int(line["n"])
        # the four kept closures add n-3..n to 1000 each: old closures, read with their old layout
        assert int(line["added"]) == 4 * 1000 + 4 * n - 6, line
    assert not app.exits()
