"""Issue 15, bug 2: `object_diff` tells a function the user edited from one that was only
relinked. Real rustc objects of one crate, compiled from the same file name (a panic
Location names its file), before and after an edit:

- editing one string of a merged string pool (`.rodata.str1.1`) changes no function that
  refers to another string of that pool;
- a line inserted above functions changes their panic Locations' line numbers only: they
  are changed (patched, redirected) but `moved`, not edited."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hotline.engine.analyse.object_diff import diff_functions, fingerprints
from hotline.engine.link.elf_objects import read_object

SOURCE = """\
pub struct S {
    pub n: u32,
}

impl S {
    #[inline(never)]
    pub fn m(&self) {
        println!("method {}", self.n);
    }
}

#[inline(never)]
pub fn tick(s: &S) -> u32 {
    println!("tick {}", s.n);
    s.m();
    s.n + 1
}

#[inline(never)]
pub fn below(v: &[u32], i: usize) -> u32 {
    v[i]
}

#[inline(never)]
pub fn constant() -> &'static str {
    "unchanged"
}
"""


def compile_crate(folder: Path, source: str):
    folder.mkdir(parents=True)
    (folder / "moves.rs").write_text(source)
    subprocess.run(
        ["rustc", "--crate-type=lib", "--crate-name=moves", "--edition=2021", "--emit=obj"]
        + ["-Cdebuginfo=2", "-Ccodegen-units=1", "-o", "moves.o", "moves.rs"],
        check=True,
        capture_output=True,
        cwd=folder,
    )
    return fingerprints([read_object(folder / "moves.o")])


def short(names):
    """`tick`, `S1m` (S::m) from `_ZN5moves4tick17h…E`, `_ZN5moves1S1m17h…E`."""
    return sorted(n.split("5moves", 1)[1].split("17h", 1)[0].lstrip("0123456789") for n in names)


@pytest.fixture(scope="module")
def old(tmp_path_factory):
    return compile_crate(tmp_path_factory.mktemp("old") / "crate", SOURCE)


def test_an_edited_string_of_a_merged_pool_changes_only_its_function(old, tmp_path):
    new = compile_crate(tmp_path / "crate", SOURCE.replace('"method {}"', '"method, longer now {}"'))
    changes = diff_functions(old, new)
    # `tick`'s "tick " lies in the same .rodata.str1.1 as "method ", after it: not a change
    assert short(changes.changed) == ["S1m"], changes
    assert short(changes.edited) == ["S1m"] and changes.moved == []


def test_an_inserted_line_moves_the_functions_below_without_editing_them(old, tmp_path):
    new = compile_crate(
        tmp_path / "crate", SOURCE.replace("#[inline(never)]\npub fn tick", "\n#[inline(never)]\npub fn tick")
    )
    changes = diff_functions(old, new)
    # their panic Locations' lines changed: patched (behaviour: the line a panic reports) ...
    assert short(changes.changed) == ["below", "tick"], changes
    # ... but nobody edited them
    assert short(changes.moved) == ["below", "tick"] and changes.edited == []


def test_an_edit_next_to_a_moved_line_is_an_edit(old, tmp_path):
    edited = SOURCE.replace("#[inline(never)]\npub fn tick", "\n#[inline(never)]\npub fn tick")
    edited = edited.replace("    v[i]\n", "    v[i + 1]\n")
    changes = diff_functions(old, compile_crate(tmp_path / "crate", edited))
    assert short(changes.changed) == ["below", "tick"], changes
    assert short(changes.edited) == ["below"] and short(changes.moved) == ["tick"]
