"""`patched` is a receipt, on generated programs (issue 25): random edits of code reached
from thread loops, closures run by core's generics (`Iterator::map`, `Option::map`,
`thread::scope`), a trait object, a stored function pointer, an async fn and an init
function, at opt-levels 0 and 2; and, in a program with rayon and tokio at opt-level 1, a
closure run on rayon's pool threads, an async fn awaited by a tokio task and the body of a
long-lived tokio task (tests/receipt_corpus.py). Each edit's new output must appear, or an
event must name a function of what was edited and say why not.

CI runs a sample; `bench/receipt_corpus.py` runs 200+ edits at opt-levels 0 to 3.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from receipt_corpus import DEPS_SITES, LOCK, cached_folder, run_app


@pytest.mark.parametrize(("opt", "seed", "deps"), [(0, 5, False), (2, 6, False), (1, 7, True)])
@pytest.mark.slow
def test_no_random_edit_is_reported_patched_while_its_new_code_silently_never_runs(
    tmp_path: Path, opt: int, seed: int, deps: bool
) -> None:
    # the program with dependencies is built where its rayon and tokio stay built, and its
    # first edits are of their sites
    folder = cached_folder(opt) if deps else tmp_path / "receipts"
    outcomes = run_app(folder, opt, seed, edits=6, deps=deps, plan=DEPS_SITES if deps else None)
    assert len(outcomes) == 6
    assert not deps or {o.site for o in outcomes} >= set(DEPS_SITES)
    assert not deps or (folder / "Cargo.lock").read_text() == LOCK.read_text()  # built as pinned
    bad = [o for o in outcomes if o.result in ("silent", "crash", "wrong", "false-not-run")]
    assert not bad, bad
