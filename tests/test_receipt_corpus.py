"""`patched` is a receipt, on generated programs (issue 25): random edits of code reached
from thread loops, closures run by core's generics (`Iterator::map`, `Option::map`,
`thread::scope`), a trait object, a stored function pointer, an async fn and an init
function, at opt-levels 0 and 2 (tests/receipt_corpus.py). Each edit's new output must
appear, or an event must name a function of what was edited and say why not.

CI runs a sample; `bench/receipt_corpus.py` runs 200+ edits at opt-levels 0 to 3.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from receipt_corpus import run_app


@pytest.mark.parametrize(("opt", "seed"), [(0, 5), (2, 6)])
@pytest.mark.slow
def test_no_random_edit_is_reported_patched_while_its_new_code_silently_never_runs(
    tmp_path: Path, opt: int, seed: int
) -> None:
    outcomes = run_app(tmp_path / "receipts", opt, seed, edits=6)
    assert len(outcomes) == 6
    bad = [o for o in outcomes if o.result in ("silent", "crash", "wrong")]
    assert not bad, bad
