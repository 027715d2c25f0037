"""Receipts' first-call preambles (server/hotline/engine/link/first_call_stubs.py), as the patch
linker places them, read back from a linked image (ARCHITECTURE.md, "Receipts"): the
machine code (disassembled with capstone), what callers enter at, what is left pointing
into a body, and the unwind info (read by binutils' readelf from the patch's debug ELF)."""

from __future__ import annotations

import re
import struct
import subprocess

import pytest
from capstone import CS_ARCH_X86, CS_MODE_64, Cs
from engine_fixtures import assemble, fake_executable
from hotline.engine.link.debug_elf import build_debug_elf
from hotline.engine.link.elf_objects import STT_FUNC
from hotline.engine.link.first_call_stubs import FLAG_LINE, PREAMBLE
from hotline.engine.link.patch_link import ProcessSymbols, link_patch

SLIDE, BASE, OLD_HELPER = 0x10000, 0x2000_0000, 0x401000

SOURCE = """
        .section .text.helper,"ax",@progbits
        .globl  helper
        .type   helper,@function
helper:
        movl    $1, %eax
        ret
        .size   helper, .-helper

        .section .text.caller,"ax",@progbits
        .globl  caller
        .type   caller,@function
caller:
        call    helper
        movq    helper@GOTPCREL(%rip), %rax
        ret
        .size   caller, .-caller

        .section .data.rel.ro.pointers,"aw",@progbits
        .globl  pointers
pointers:
        .quad   helper
        .quad   helper+5
"""


@pytest.fixture(scope="module")
def linked(tmp_path_factory):
    obj = assemble(tmp_path_factory.mktemp("first_call") / "stubs.o", SOURCE)
    exe = fake_executable({"helper": (OLD_HELPER, STT_FUNC)})
    return obj, link_patch([obj], exe, SLIDE, ProcessSymbols(), BASE)


def read(patch, addr: int, size: int) -> bytes:
    for seg in patch.segments:
        if seg["addr"] <= addr and addr + size <= seg["addr"] + seg["memsz"]:
            return patch.image[seg["offset"] + addr - seg["addr"] :][:size]
    raise AssertionError(f"{addr:#x} is outside the image")


def disassemble(patch, addr: int, size: int) -> list[tuple[str, int | None]]:
    """(instruction, the address it refers to: a branch target or a rip-relative operand)."""
    out = []
    for insn in Cs(CS_ARCH_X86, CS_MODE_64).disasm(read(patch, addr, size), addr):
        text = f"{insn.mnemonic} {insn.op_str}"
        rip = re.search(r"\[rip ([+-]) 0x([0-9a-f]+)\]", insn.op_str)
        if rip:
            target = insn.address + insn.size + int(rip[2], 16) * (1 if rip[1] == "+" else -1)
        elif insn.mnemonic in ("je", "jmp", "call"):
            target = int(insn.op_str, 16)
        else:
            target = None
        out.append((re.sub(r"0x[0-9a-f]+", "X", text), target))
    return out


def unwind_rules(frames: str) -> dict[tuple[int, int], tuple[str, str]]:
    """(start, end) of each FDE -> its first row's CFA and return-address rules, as readelf
    interprets them (an FDE without instructions of its own has its CIE's initial rules)."""
    cies: dict[str, tuple[str, str]] = {}
    out: dict[tuple[int, int], tuple[str, str]] = {}
    for entry in frames.split("\n\n"):
        head = re.search(r"^(\w+) \w+ \w+ (CIE|FDE)(?: cie=(\w+) pc=(\w+)\.\.(\w+))?", entry.strip(), re.M)
        if head is None:
            continue
        row = re.search(r"^\s*LOC\s+CFA\s+ra\s*\n\s*\w+\s+(\S+)\s+(\S+)", entry, re.M)
        rules = (row[1], row[2]) if row else None
        if head[2] == "CIE":
            cies[head[1]] = rules or ("", "")
        else:
            out[(int(head[4], 16), int(head[5], 16))] = rules or cies[head[3]]
    return out


def test_each_function_is_entered_through_a_preamble_that_sets_its_flag_once(linked):
    _, patch = linked
    entry, body, flag = patch.functions["helper"], patch.body("helper"), patch.first_call_flags["helper"]
    assert body == entry + PREAMBLE and entry >= BASE
    (cmp, flag_at), (je, mark) = disassemble(patch, entry, PREAMBLE)
    assert (cmp, flag_at) == ("cmp byte ptr [rip + X], 0", flag)
    assert je == "je X"
    assert disassemble(patch, mark, 12) == [("mov byte ptr [rip + X], 1", flag), ("jmp X", body)]
    assert read(patch, body, 6) == b"\xb8\x01\x00\x00\x00\xc3"  # the function's own code, untouched
    # The flags: one byte each, zero until the first call, on cache lines of their own in rw.
    start, count = patch.flags
    assert count == 2 and start % FLAG_LINE == 0
    assert sorted(patch.first_call_flags.values()) == [start, start + 1]
    (rw,) = [s for s in patch.segments if s["prot"] == "rw"]
    assert rw["addr"] <= start and start + FLAG_LINE <= rw["addr"] + rw["memsz"]
    assert read(patch, start, FLAG_LINE) == bytes(FLAG_LINE)


def test_callers_enter_at_the_preamble_and_a_pointer_into_the_body_stays_there(linked):
    obj, patch = linked
    entry, body = patch.functions["helper"], patch.body("helper")
    # The old copy jumps (table) to the preamble; the patch's call, GOT slot and function pointer enter there.
    assert (OLD_HELPER + SLIDE, entry) in patch.table
    (call, to), (load, slot) = disassemble(patch, patch.body("caller"), 12)
    assert (call, to) == ("call X", entry)
    assert load == "mov rax, qword ptr [rip + X]" and read(patch, slot, 8) == struct.pack("<Q", entry)
    pointers = patch.exports["pointers"]
    assert struct.unpack("<QQ", read(patch, pointers, 16)) == (entry, body + 5)
    # What later patches resolve against and redirect: the preamble, which covers the body.
    assert patch.exports["helper"] == entry and patch.function_sizes["helper"] == PREAMBLE + 6


def test_an_unwinder_stopped_in_a_preamble_or_a_mark_finds_the_caller(linked, tmp_path):
    _, patch = linked
    elf = tmp_path / "patch.debug"
    elf.write_bytes(build_debug_elf(patch))
    frames = subprocess.run(
        ["readelf", "--debug-dump=frames-interp", str(elf)], capture_output=True, text=True, check=True
    ).stdout
    covered = unwind_rules(frames)
    for name in ("helper", "caller"):
        entry = patch.functions[name]
        assert covered.get((entry, entry + PREAMBLE)) == ("rsp+8", "c-8"), frames
    marks = [span for span in covered if span[1] - span[0] == 2 * 16]
    assert len(marks) == 1 and covered[marks[0]] == ("rsp+8", "c-8"), frames
    mark = disassemble(patch, patch.functions["helper"], PREAMBLE)[1][1]
    assert marks[0][0] <= mark < marks[0][1]
    # The debug ELF's symbol for the function starts at its preamble (gdb's `info symbol`, perf).
    symbols = subprocess.run(["readelf", "-sW", str(elf)], capture_output=True, text=True, check=True).stdout
    (row,) = [line.split() for line in symbols.splitlines() if line.endswith(" helper")]
    assert (int(row[1], 16), int(row[2])) == (patch.functions["helper"], PREAMBLE + 6)
