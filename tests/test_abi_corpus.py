"""The ABI check on generated programs (issue 24): random edits of closure captures,
`impl Iterator` concrete types, generic arguments, returned enums and async futures,
each patched while a loop holds old frames and values (tests/abi_corpus.py). No edit may
crash the app or make it print a value that no generation's code computes.

CI runs a sample (one program per kind, opt-levels 0 and 1 in turn); `bench/abi_corpus.py`
runs the full corpus (200+ edits) and prints the count of each outcome.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from abi_corpus import KINDS, run_app

SAMPLE = [(kind, i % 2, 100 + i) for i, kind in enumerate(KINDS)]


@pytest.mark.parametrize(("kind", "opt", "seed"), SAMPLE)
def test_random_edits_never_crash_the_app_nor_print_a_value_no_code_computes(
    tmp_path: Path, kind: str, opt: int, seed: int
) -> None:
    outcomes = run_app(tmp_path / kind, kind, opt, seed, edits=4)
    assert len(outcomes) == 4
    bad = [o for o in outcomes if o.result in ("crash", "wrong")]
    assert not bad, bad
