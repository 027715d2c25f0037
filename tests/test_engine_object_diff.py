"""`object_diff` on two real builds of one crate (tests/engine_fixtures/diff_{old,new}.rs):
moved code keeps its fingerprint, a string constant changed behind a relocation does not,
and added and removed functions are reported (ARCHITECTURE.md, "Diff and rude edits")."""

from __future__ import annotations

import pytest
from engine_fixtures import rustc, symbol
from hotline.engine.analyse.object_diff import diff_functions, fingerprints, relocation_target
from hotline.engine.link.elf_objects import STT_FUNC, read_object


@pytest.fixture(scope="session")
def builds(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("diff")
    out = {}
    for version in ("old", "new"):
        (path,) = rustc(tmp / version, f"diff_{version}.rs", "-Ccodegen-units=1", name="diffs")
        out[version] = read_object(path)
    return out["old"], out["new"]


def short(names):
    """`diffs::greeting` from `_ZN5diffs8greeting17h…E`."""
    return sorted(n.split("5diffs", 1)[1].split("17h", 1)[0].lstrip("0123456789") for n in names)


def body(obj, needle):
    fn = symbol(obj, needle, STT_FUNC)
    sec = obj.sections[fn.shndx]
    return sec.data[fn.value : fn.value + fn.size], [(r.offset, r.type, r.addend) for r in sec.relocs]


def test_changed_added_and_removed_functions(builds):
    old, new = builds
    changes = diff_functions(fingerprints([old]), fingerprints([new]))
    assert short(changes.changed) == ["greeting", "logic"]
    assert short(changes.added) == ["added_fn"]
    assert short(changes.removed) == ["removed_fn"]
    assert changes.any


def test_a_string_constant_changed_behind_a_relocation_is_seen(builds):
    old, new = builds
    # The code is byte for byte the same ("hello" and "hullo" have one length) ...
    assert body(old, "8greeting") == body(new, "8greeting")
    # ... only what the relocation points at differs.
    targets = []
    for obj in builds:
        fn = symbol(obj, "8greeting", STT_FUNC)
        (r,) = obj.sections[fn.shndx].relocs
        targets.append(relocation_target(obj, r.sym))
    assert all(t.startswith("data:") for t in targets) and targets[0] != targets[1]
    old_fp, new_fp = fingerprints([old]), fingerprints([new])
    greeting = symbol(old, "8greeting", STT_FUNC).name
    assert old_fp[greeting] != new_fp[greeting]


def test_moved_code_and_renamed_anonymous_constants_keep_their_fingerprints(builds):
    old, new = builds
    old_fp, new_fp = fingerprints([old]), fingerprints([new])
    # The same constant has another anonymous name in the new build (another unit hash and
    # index, since a new constant comes first): it is compared by its contents.
    fn_old, fn_new = symbol(old, "9same_text", STT_FUNC), symbol(new, "9same_text", STT_FUNC)
    (r_old,) = old.sections[fn_old.shndx].relocs
    (r_new,) = new.sections[fn_new.shndx].relocs
    names = [o.sections[o.symbols[r.sym].shndx].name for o, r in ((old, r_old), (new, r_new))]
    assert names[0].startswith(".rodata..Lanon.") and names[0] != names[1]
    assert old_fp[fn_old.name] == new_fp[fn_new.name]
    for needle in ("6stable", "12calls_stable"):  # moved down the file, callee moved too
        assert old_fp[symbol(old, needle, STT_FUNC).name] == new_fp[symbol(new, needle, STT_FUNC).name]
