"""`patch_link.link_patch` on real objects, against a fake running process.

Each relocation kind the linker handles is resolved and the value it wrote is read back
from the image (ARCHITECTURE.md, "Patch link"): hand-written assembly gives one site per
kind (tests/engine_fixtures/relocs.s), and real rustc objects give the kinds rustc emits
for a binary crate (local-exec TLS, PC-relative statics) and for a position-independent
library crate (general- and local-dynamic TLS). Every HL1099 branch is made to run.
"""

from __future__ import annotations

import struct

import pytest
from engine_fixtures import HERE, STT_OBJECT, assemble, fake_executable, rustc, symbol
from hotline.engine.errors import PatchLinkError
from hotline.engine.link.elf_objects import STT_FUNC, STT_TLS, read_object
from hotline.engine.link.first_call_stubs import PREAMBLE
from hotline.engine.link.patch_link import ProcessSymbols, link_patch
from hotline.engine.link.x86_64_relocations import (
    EXE_TLS_MODULE,
    R_X86_64_DTPOFF32,
    R_X86_64_GOTPCREL,
    R_X86_64_PC32,
    R_X86_64_PLT32,
    R_X86_64_TLSGD,
    R_X86_64_TLSLD,
    R_X86_64_TPOFF32,
)

SLIDE = 0x10000  # the app's ASLR slide: runtime address = link-time address + SLIDE
BASE = 0x2000_0000  # the patch region, within rel32 reach of the executable
EXE_FUNC, EXE_DATA, OLD_COUNTER, OLD_SITES = 0x401000, 0x600000, 0x600100, 0x402000
TLS = {"ext_tls": 0x20, "own_tls": 0x08}
TLS_SIZE, TLS_ALIGN = 0x28, 16  # block 0x30: tpoff(x) = x - 0x30


def relocs_exe():
    return fake_executable(
        {
            "exe_func": (EXE_FUNC, STT_FUNC),
            "exe_data": (EXE_DATA, STT_OBJECT),
            "old_counter": (OLD_COUNTER, STT_OBJECT),
            "sites": (OLD_SITES, STT_FUNC),
        },
        tls=TLS,
        tls_size=TLS_SIZE,
        tls_align=TLS_ALIGN,
    )


@pytest.fixture(scope="session")
def objects(tmp_path_factory):
    """Every object these tests link, built once."""
    tmp = tmp_path_factory.mktemp("patch_link")
    out = {"relocs": assemble(tmp / "relocs.o", (HERE / "relocs.s").read_text())}
    for name, text in BROKEN.items():
        out[name] = assemble(tmp / f"{name}.o", text[0])
    (out["tls_bin"],) = map(
        read_object, rustc(tmp / "bin", "tls_bin.rs", "-Ccodegen-units=1", crate_type="bin")
    )
    (out["tls_lib"],) = map(
        read_object, rustc(tmp / "lib", "tls_lib.rs", "-Ccodegen-units=1", "-Crelocation-model=pic")
    )
    return out


class Image:
    """A linked patch, read by runtime address."""

    def __init__(self, patch):
        self.patch = patch

    def read(self, addr: int, size: int) -> bytes:
        for seg in self.patch.segments:
            if seg["addr"] <= addr and addr + size <= seg["addr"] + seg["memsz"]:
                at = seg["offset"] + addr - seg["addr"]
                return self.patch.image[at : at + size]
        raise AssertionError(f"{addr:#x} is outside the image")

    def i32(self, addr: int) -> int:
        return struct.unpack("<i", self.read(addr, 4))[0]

    def u32(self, addr: int) -> int:
        return struct.unpack("<I", self.read(addr, 4))[0]

    def i64(self, addr: int) -> int:
        return struct.unpack("<q", self.read(addr, 8))[0]

    def u64(self, addr: int) -> int:
        return struct.unpack("<Q", self.read(addr, 8))[0]

    def pc_target(self, site: int) -> int:
        """Where a PC-relative field at `site` (with the usual -4 addend) points."""
        return site + 4 + self.i32(site)

    def segment_of(self, addr: int) -> str:
        return next(s["prot"] for s in self.patch.segments if s["addr"] <= addr < s["addr"] + s["memsz"])


def sites_of(obj, patch) -> dict[str, int]:
    """Runtime address of every `s_*` label of relocs.s in the linked image."""
    start = patch.body("sites")
    return {s.name: start + s.value for s in obj.symbols if s.name.startswith("s_")}


@pytest.fixture(scope="session")
def relocs(objects):
    obj = objects["relocs"]
    patch = link_patch([obj], relocs_exe(), SLIDE, ProcessSymbols(), BASE)
    return obj, patch, Image(patch), sites_of(obj, patch)


def test_absolute_and_pc_relative_relocations_reach_the_executable(relocs):
    _, patch, img, s = relocs
    assert patch.segments[0]["addr"] == BASE and patch.segments[0]["prot"] == "rx"
    assert img.u64(s["s_64"]) == EXE_FUNC + SLIDE + 16  # R_X86_64_64
    assert img.i32(s["s_pc32"]) == EXE_DATA + SLIDE - 4 - s["s_pc32"]  # R_X86_64_PC32
    assert img.pc_target(s["s_plt32"]) == EXE_FUNC + SLIDE  # R_X86_64_PLT32
    assert img.pc_target(s["s_plt32_local"]) == patch.functions["helper"]  # to the new copy
    assert img.u32(s["s_32"]) == EXE_DATA + SLIDE + 8  # R_X86_64_32
    assert img.i32(s["s_32s"]) == EXE_DATA + SLIDE - 0x1000000 < 0  # R_X86_64_32S, sign-extended
    assert img.i64(s["s_pc64"]) == EXE_FUNC + SLIDE + 2 - s["s_pc64"]  # R_X86_64_PC64
    assert img.u64(s["s_weak"]) == 0  # an undefined weak symbol nobody defines


@pytest.mark.parametrize(
    "site,value", [("s_gotpcrel", EXE_DATA), ("s_gotpcrelx", EXE_FUNC), ("s_rex_gotpcrelx", EXE_DATA)]
)
def test_got_relocations_point_at_a_slot_holding_the_address(relocs, site, value):
    _, patch, img, s = relocs
    slot = img.pc_target(s[site])  # GOTPCREL, GOTPCRELX, REX_GOTPCRELX
    assert img.segment_of(slot) == "rw" and slot % 8 == 0
    assert img.u64(slot) == value + SLIDE


def test_shared_library_symbols_become_got_slots_and_stubs(relocs):
    obj, patch, img, s = relocs
    imports = {(addr, name) for addr, name in patch.imports}
    # A GOT load of a libc object: a slot the runtime fills with dlsym.
    slot = img.pc_target(s["s_got_import"])
    assert (slot, "libc_data") in imports and img.u64(slot) == 0
    # A call (PLT32) and a PC32 reference to a libc function: both go to one stub,
    # `jmp *slot(%rip)`, whose slot is an import.
    stub = img.pc_target(s["s_plt32_import"])
    assert img.pc_target(s["s_pc32_import"]) == stub and img.segment_of(stub) == "rx"
    code = img.read(stub, 8)
    assert code[:2] == b"\xff\x25" and code[6:] == b"\xcc\xcc"
    assert (stub + 6 + struct.unpack("<i", code[2:6])[0], "libc_func") in imports
    # A pointer to a libc function in writable data is filled in place.
    table = patch.exports["table"]
    assert (table, "libc_func") in imports
    assert img.u64(table + 8) == patch.functions["helper"]
    assert len(patch.imports) == 3


def test_thread_local_relocations_use_the_executables_tls_block(relocs):
    _, patch, img, s = relocs
    block = 0x30
    # Local-exec: the thread-pointer offset, for an undefined and for a defined thread-local.
    assert img.i32(s["s_tpoff32"]) == TLS["ext_tls"] - block + 4
    assert img.i32(s["s_tpoff32_own"]) == TLS["own_tls"] - block
    # Initial-exec: a GOT slot holding the thread-pointer offset.
    slot = img.pc_target(s["s_gottpoff"])
    assert img.segment_of(slot) == "rw" and img.i64(slot) == TLS["ext_tls"] - block
    # General- and local-dynamic: (module, offset) pairs for __tls_get_addr.
    gd, ld = img.pc_target(s["s_tlsgd"]), img.pc_target(s["s_tlsld"])
    assert struct.unpack("<QQ", img.read(gd, 16)) == (EXE_TLS_MODULE, TLS["own_tls"])
    assert struct.unpack("<QQ", img.read(ld, 16)) == (EXE_TLS_MODULE, 0)
    assert img.i32(s["s_dtpoff32"]) == TLS["own_tls"] + 2
    assert img.i64(s["s_dtpoff64"]) == TLS["ext_tls"] + 8


def test_statics_keep_their_address_and_new_ones_get_space(relocs):
    _, patch, img, s = relocs
    assert img.pc_target(s["s_old_static"]) == OLD_COUNTER + SLIDE  # the running copy
    assert "old_counter" not in patch.new_data
    new = img.pc_target(s["s_new_static"])
    assert patch.new_data == {"new_counter": new}
    assert img.segment_of(new) == "rw" and img.u64(new) == 0x1122334455667788  # its initial value
    assert img.read(img.pc_target(s["s_rodata"]), 20) == b"hello from the patch"
    assert img.segment_of(img.pc_target(s["s_rodata"])) == "r"


def test_jump_table_and_what_later_patches_resolve_against(objects):
    obj = objects["relocs"]
    earlier_sites = 0x1F00_0000
    prior = ProcessSymbols(
        data={"old_counter": 0x1F80_0000},  # an earlier patch moved nothing, but added this
        code={"exe_func": 0x1F00_1000},  # an earlier patch's copy of a unit this one leaves out
        functions={"sites": [earlier_sites]},
    )
    patch = link_patch([obj], relocs_exe(), SLIDE, prior, BASE)
    img, s = Image(patch), sites_of(obj, patch)
    assert img.pc_target(s["s_old_static"]) == 0x1F80_0000
    assert img.pc_target(s["s_plt32"]) == 0x1F00_1000
    new = patch.functions["sites"]
    assert {(OLD_SITES + SLIDE, new), (earlier_sites, new)} <= set(patch.table)
    # What this patch hands to the next one.
    after = ProcessSymbols()
    after.record(patch)
    assert after.functions["sites"] == [new] and after.data["new_counter"] == patch.new_data["new_counter"]
    # the copy as linked: its first-call preamble (first_call_stubs.py), then its own code
    copy = after.code_bytes(patch.functions["helper"])
    assert copy[:2] == b"\x80\x3d" and copy[PREAMBLE:] == b"\xb8\x01\x00\x00\x00\xc3"


# -- real rustc objects ------------------------------------------------------------------


def exe_for(obj, leave_out: str, tls_size: int = 0x100):
    """An executable defining every name `obj` uses but `leave_out` (a libc import then),
    its statics but NEW_STATIC, and each of its thread-locals at its own offset."""
    symbols, tls = {}, {}
    for i, sym in enumerate(obj.symbols):
        if not sym.name or leave_out in sym.name or "NEW_STATIC" in sym.name:
            continue
        if sym.type == STT_TLS:
            tls[sym.name] = 0x10 * (len(tls) + 1)
        elif not sym.defined or "OLD_STATIC" in sym.name:
            symbols[sym.name] = (0x400000 + 0x40 * i, STT_OBJECT if sym.defined else STT_FUNC)
    return fake_executable(symbols, tls=tls, tls_size=tls_size, tls_align=16)


def sites(obj, patch, function: str, rtype: int):
    """(runtime site, relocation, target symbol) of each relocation of `rtype` in `function`."""
    fn = symbol(obj, function, STT_FUNC)
    start = patch.body(fn.name)
    return [
        (start + r.offset - fn.value, r, obj.symbols[r.sym])
        for r in obj.sections[fn.shndx].relocs
        if r.type == rtype
    ]


def test_a_binary_crates_statics_and_local_exec_thread_local(objects):
    obj = objects["tls_bin"]
    exe = exe_for(obj, "process2id")
    patch = link_patch([obj], exe, SLIDE, ProcessSymbols(), BASE)
    img = Image(patch)

    # touch(): OLD_STATIC stays where it runs; NEW_STATIC gets space, with its initial value.
    old = symbol(obj, "OLD_STATIC")
    (new_name,) = [n for n in patch.new_data if "NEW_STATIC" in n]
    statics = sites(obj, patch, "5touch", R_X86_64_PC32)
    seen = set()
    for at, r, target in statics:
        section = obj.sections[target.shndx].name if target.defined else ""
        if "OLD_STATIC" in section:
            assert at + img.i32(at) - r.addend == exe.address(old.name) + SLIDE
            seen.add("old")
        elif "NEW_STATIC" in section:
            assert at + img.i32(at) - r.addend == patch.new_data[new_name]
            seen.add("new")
    assert seen == {"old", "new"}
    assert img.read(patch.new_data[new_name], 32) == struct.pack("<4Q", 9, 9, 9, 9)

    # HITS's accessor: local-exec TLS at the executable's offset (tpoff = offset - block).
    (tpoff,) = sites_any(obj, patch, "4HITS", R_X86_64_TPOFF32)
    at, r, target = tpoff
    assert target.type == STT_TLS and img.i32(at) == exe.tls_offset(target.name) - 0x100 + r.addend

    # greet(): std::process::id, left out of the executable, is a GOT import; the string
    # constant is copied into the image.
    got = {t.name: at for at, r, t in sites(obj, patch, "5greet", R_X86_64_GOTPCREL)}
    (id_name,) = [n for n in got if "process2id" in n]
    slot = got[id_name] + 4 + img.i32(got[id_name])
    assert (slot, id_name) in patch.imports
    for name, at in got.items():
        if name != id_name:  # panic helpers: in the executable
            assert img.u64(at + 4 + img.i32(at)) == exe.address(name) + SLIDE
    texts = [img.read(at + 4 + img.i32(at), 17) for at, _, _ in sites(obj, patch, "5greet", R_X86_64_PC32)]
    assert b"a string constant" in texts

    # main(): calls to the crate's own functions go to their new copies.
    calls = [at + img.i32(at) - r.addend for at, r, _ in sites(obj, patch, "7tls_bin4main", R_X86_64_PLT32)]
    for callee in ("5touch", "4bump17h", "5greet"):
        assert patch.functions[symbol(obj, callee, STT_FUNC).name] in calls


def test_a_pic_library_crates_dynamic_thread_locals(objects):
    obj = objects["tls_lib"]
    exe = exe_for(obj, "\0")
    patch = link_patch([obj], exe, SLIDE, ProcessSymbols(), BASE)
    img = Image(patch)
    # general-dynamic (HITS, pub): a (module 1, offset) pair for __tls_get_addr
    (gd,) = [x for f in ("4bump", "HITS") for x in sites_any(obj, patch, f, R_X86_64_TLSGD)]
    at, r, target = gd
    pair = at + img.i32(at) - r.addend
    assert struct.unpack("<QQ", img.read(pair, 16)) == (EXE_TLS_MODULE, exe.tls_offset(target.name))
    # local-dynamic (LAZY): the module's pair, then the variable's offset in the block
    (ld,) = [x for f in ("4lazy", "LAZY") for x in sites_any(obj, patch, f, R_X86_64_TLSLD)]
    at, r, _ = ld
    assert struct.unpack("<QQ", img.read(at + img.i32(at) - r.addend, 16)) == (EXE_TLS_MODULE, 0)
    dtp = [x for f in ("4lazy", "LAZY") for x in sites_any(obj, patch, f, R_X86_64_DTPOFF32)]
    assert dtp
    for at, r, target in dtp:
        assert img.i32(at) == exe.tls_offset(target.name) + r.addend


def sites_any(obj, patch, needle: str, rtype: int):
    """Like `sites`, over every function whose name contains `needle`."""
    out = []
    for fn in obj.symbols:
        if fn.type == STT_FUNC and fn.defined and needle in fn.name and fn.name in patch.functions:
            start = patch.body(fn.name)
            out += [
                (start + r.offset - fn.value, r, obj.symbols[r.sym])
                for r in obj.sections[fn.shndx].relocs
                if r.type == rtype and fn.value <= r.offset < fn.value + fn.size
            ]
    return out


def test_a_new_thread_local_is_refused_with_hl1003(objects):
    obj = objects["tls_bin"]
    exe = exe_for(obj, "process2id")
    for names in exe.by_name.values():
        names[:] = [s for s in names if s.type != STT_TLS]
    with pytest.raises(PatchLinkError) as e:
        link_patch([obj], exe, SLIDE, ProcessSymbols(), BASE)
    assert e.value.rule == "HL1003" and "HITS" in str(e.value)


# -- every HL1099 branch -----------------------------------------------------------------


def site(reloc: str, section: str = '.text.f,"ax",@progbits', extra: str = "") -> str:
    return f"""
        .section {section}
        .globl f
        .type f,@function
f:      .reloc ., {reloc}
        .quad 0
        .size f, .-f
        .type ext_tls,@tls_object
        .type gone_tls,@tls_object
{extra}
"""


# name -> (assembly, expected message); each object fails on one branch.
BROKEN = {
    "not_loaded": (
        site("R_X86_64_PC32, ia-4", extra='.section .init_array,"aw"\nia: .quad f'),
        "relocation against section .init_array, which is not loaded",
    ),
    "gottpoff_non_tls": (site("R_X86_64_GOTTPOFF, exe_data-4"), "TLS relocation against non-TLS exe_data"),
    "got_for_tls": (site("R_X86_64_GOTPCREL, ext_tls-4"), "GOT entry for thread-local ext_tls"),
    "tlsgd_non_tls": (site("R_X86_64_TLSGD, exe_data-4"), "TLS relocation against non-TLS exe_data"),
    "dtpoff_non_tls": (site("R_X86_64_DTPOFF32, exe_data"), "DTPOFF relocation against a non-TLS symbol"),
    "import_in_code": (
        site("R_X86_64_64, libc_func"),
        "cannot reach shared-library symbol libc_func from patched code",
    ),
    "import_with_addend": (
        site("R_X86_64_64, libc_func+8", section='.data.rel.ro.t,"aw",@progbits'),
        "cannot reach shared-library symbol libc_func from patched code",
    ),
    "tpoff_non_tls": (
        site("R_X86_64_TPOFF32, exe_data"),
        "local-exec TLS relocation against a non-TLS symbol",
    ),
    "absolute_tls": (site("R_X86_64_64, ext_tls"), "unsupported relocation type 1 against a thread-local"),
    "unsupported_type": (site("R_X86_64_GOTOFF64, exe_data"), "unsupported relocation type 25 in"),
    "tls_not_in_exe": (site("R_X86_64_TPOFF32, gone_tls"), "thread-local gone_tls is not in the executable"),
    "unsigned_32_negative": (site("R_X86_64_32, exe_data-0x1000000"), "out of 32-bit range (type 10)"),
    "signed_32s_too_big": (site("R_X86_64_32S, exe_data+0x7fffffff"), "out of 32-bit range (type 11)"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_each_unsupported_case_is_refused_with_hl1099(objects, name):
    with pytest.raises(PatchLinkError) as e:
        link_patch([objects[name]], relocs_exe(), SLIDE, ProcessSymbols(), BASE)
    assert e.value.rule == "HL1099"
    assert BROKEN[name][1] in str(e.value)


def test_a_pc_relative_reference_out_of_rel32_reach_is_refused(objects):
    far = 0x7F00_0000_0000  # a region the executable cannot reach with rel32
    with pytest.raises(PatchLinkError) as e:
        link_patch([objects["relocs"]], relocs_exe(), SLIDE, ProcessSymbols(), far)
    assert e.value.rule == "HL1099" and "out of 32-bit range" in str(e.value)
