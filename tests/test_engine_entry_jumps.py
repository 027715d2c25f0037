"""`entry_jumps.EntryJumps`: which old copies of a function may take an entry jump, for
copies in the executable (read from its file) and in an earlier patch (as linked), on
real machine code (tests/engine_fixtures/entry.s)."""

from __future__ import annotations

import pytest
from engine_fixtures import HERE, assemble, fake_executable, symbol
from hotline.engine.analyse.entry_jumps import EntryJumps
from hotline.engine.link.elf_objects import STT_FUNC
from hotline.engine.link.first_call_stubs import PREAMBLE
from hotline.engine.link.patch_link import ProcessSymbols, link_patch

SLIDE = 0x10000
CLEAN, SPIN = 0x401000, 0x402000  # link-time addresses of the executable's copies
LOOP_HEAD = "a branch at byte 8 targets byte 2 of its entry"  # spin's `jb 1b`


@pytest.fixture(scope="session")
def entry_object(tmp_path_factory):
    return assemble(tmp_path_factory.mktemp("entry") / "entry.o", (HERE / "entry.s").read_text())


def executable(obj, **extra):
    """An executable whose `clean` and `spin` are the object's code (read from its file),
    plus `extra` function symbols (name -> address)."""
    clean, spin = symbol(obj, "clean", STT_FUNC), symbol(obj, "spin", STT_FUNC)
    segments = [
        (addr, sym.size, obj.sections[sym.shndx].file_offset) for addr, sym in ((CLEAN, clean), (SPIN, spin))
    ]
    symbols = {"clean": (CLEAN, STT_FUNC), "spin": (SPIN, STT_FUNC)}
    symbols |= {name: (addr, STT_FUNC) for name, addr in extra.items()}
    sizes = {"clean": clean.size, "spin": spin.size} | {name: clean.size for name in extra}
    return fake_executable(symbols, sizes=sizes, path=obj.path, code_segments=segments)


def test_executable_copies(entry_object):
    jumps = EntryJumps(executable(entry_object), SLIDE, ProcessSymbols())
    assert jumps.obstacle("clean") is None
    assert jumps.obstacle("spin") == LOOP_HEAD
    plan = jumps.plan(["clean", "spin"], {"clean": 0x2000_0000, "spin": 0x2000_0040})
    assert plan.jumps == [("clean", CLEAN + SLIDE, 0x2000_0000)]
    assert plan.skipped == {"spin": LOOP_HEAD}


def test_an_alias_gets_no_entry_jump(entry_object):
    # `twin` shares clean's address (identical code folded into one copy, say).
    jumps = EntryJumps(executable(entry_object, twin=CLEAN), SLIDE, ProcessSymbols())
    assert jumps.obstacle("clean") == "another function shares its address"
    assert jumps.obstacle("twin") == "another function shares its address"
    assert jumps.plan(["clean"], {"clean": 0x2000_0000}).jumps == []


def test_an_earlier_patchs_copy_is_read_as_that_patch_linked_it(entry_object):
    exe = executable(entry_object)
    prior = ProcessSymbols()
    earlier = link_patch([entry_object], exe, SLIDE, prior, 0x2000_0000)
    prior.record(earlier)
    # as linked: the first-call preamble (first_call_stubs.py), then the function's own bytes
    assert (
        prior.code_bytes(earlier.functions["spin"])[PREAMBLE:]
        == entry_object.sections[symbol(entry_object, "spin", STT_FUNC).shndx].data
    )
    jumps = EntryJumps(exe, SLIDE, prior)
    assert jumps.obstacle("clean") is None
    plan = jumps.plan(["clean"], {"clean": 0x2100_0000})
    assert plan.jumps == [
        ("clean", CLEAN + SLIDE, 0x2100_0000),
        ("clean", earlier.functions["clean"], 0x2100_0000),
    ]
    assert jumps.obstacle("spin") == LOOP_HEAD


def test_a_copy_of_unknown_size_gets_no_entry_jump(entry_object):
    exe = executable(entry_object)
    prior = ProcessSymbols(functions={"clean": [0x2000_0000]})  # no bytes recorded for it
    assert EntryJumps(exe, SLIDE, prior).obstacle("clean") == "its size is unknown"
    # An earlier patch's copy whose loop head is in its window, with the executable's clean.
    spin_code = entry_object.sections[symbol(entry_object, "spin", STT_FUNC).shndx].data
    prior = ProcessSymbols(
        functions={"clean": [0x2000_0000]},
        sizes={0x2000_0000: len(spin_code)},
        code_images=[(0x2000_0000, spin_code)],
    )
    assert EntryJumps(exe, SLIDE, prior).obstacle("clean") == LOOP_HEAD


def test_an_alias_in_an_earlier_patch_gets_no_entry_jump_and_no_site_is_planned_twice(entry_object):
    # LLVM merges identical functions at opt-level >= 2: two names, one copy in the patch.
    exe = executable(entry_object)
    prior = ProcessSymbols()
    prior.record(link_patch([entry_object], exe, SLIDE, prior, 0x2000_0000))
    copy = prior.functions["clean"][-1]
    prior.functions["twin"] = [copy]
    jumps = EntryJumps(exe, SLIDE, prior)
    assert jumps.obstacle("twin") == "another function shares its address"
    plan = jumps.plan(["clean", "twin"], {"clean": 0x2100_0000, "twin": 0x2100_0040})
    sites = [site for _, site, _ in plan.jumps]
    assert copy not in sites and len(sites) == len(set(sites)), plan
