"""First-call flags (receipts), the x86-64 half: the code and unwind info the patch linker
puts around each new function copy so that the app records when the copy first runs.

A platform module (x86-64 machine code, `.eh_frame` encoding), kept apart from the
generic receipt tracking (`receipts.py`). Each function that starts a section of its own
(rustc's `-ffunction-sections`) gets a 13-byte *preamble* placed right before its body,
a one-byte flag in the patch's rw segment, and a 16-byte *mark* in the rx segment's cold
tail:

    entry:  cmp byte [rip+flag], 0     80 3D disp32 00   7 bytes
            je  mark                   0F 84 rel32       6 bytes
    body:   the function's own bytes, unchanged
    ...
    mark:   mov byte [rip+flag], 1     C6 05 disp32 01   7 bytes
            jmp body                   E9 rel32          5 bytes

Once the flag is set a call costs a load of a byte that never changes again and a branch
not taken: no store, so the flags' cache lines stay shared by every core (they have lines
of their own, apart from the statics the patch adds). Nothing touches the stack or an
argument register; only EFLAGS, which no calling convention passes into a function.

Callers enter at `entry` (the jump table, entry jumps, calls, vtables and function
pointers of the patch, later patches' references); the body's address, size, debug info
and `.symtab` entry are the function's own. The preamble and the marks leave RSP as a
function's first instruction finds it, so each gets an FDE with the CIE's initial rule
(CFA = RSP + 8, return address at CFA − 8): an unwinder stopped there (a profiler's
signal, the live-frame scan) finds the caller. A backtrace taken in the body never sees
them, since they jump rather than call.
"""

from __future__ import annotations

import struct

from hotline.engine.link.elf_objects import STB_LOCAL, STT_FUNC, ObjectFile

PREAMBLE = 13  # cmp + je
MARK = 16  # mov + jmp, padded
FLAG_LINE = 64  # the flags start a cache line and fill theirs alone


def preamble(entry: int, flag: int, mark: int) -> bytes:
    """`cmp byte [rip+flag], 0; je mark`, placed at `entry`, falling through to the body."""
    return (
        b"\x80\x3d"
        + struct.pack("<i", flag - (entry + 7))
        + b"\x00\x0f\x84"
        + struct.pack("<i", mark - (entry + PREAMBLE))
    )


def mark(at: int, flag: int, body: int) -> bytes:
    """`mov byte [rip+flag], 1; jmp body`, placed at `at`, padded with int3."""
    code = (
        b"\xc6\x05" + struct.pack("<i", flag - (at + 7)) + b"\x01\xe9" + struct.pack("<i", body - (at + 12))
    )
    return code + b"\xcc" * (MARK - len(code))


def _record(body: bytes) -> bytes:
    """A CIE or FDE: its length, then `body` padded with DW_CFA_nop to a multiple of 4."""
    body += b"\x00" * (-(len(body) + 4) % 4)
    return struct.pack("<I", len(body)) + body


# version 1, "zR", code align 1, data align -8, return address r16, FDE pointers pcrel|sdata4;
# at entry: CFA = rsp + 8 (DW_CFA_def_cfa r7 8), return address at CFA - 8 (DW_CFA_offset r16 1).
_CIE = _record(b"\x00\x00\x00\x00\x01zR\x00\x01\x78\x10\x01\x1b" + b"\x0c\x07\x08\x90\x01")


def eh_frame_size(ranges: int) -> int:
    """Bytes of `eh_frame` for that many code ranges."""
    return len(_CIE) + ranges * 20 if ranges else 0


def eh_frame(at: int, ranges: list[tuple[int, int]]) -> bytes:
    """A CIE and one FDE per (start, size) code range, to be placed at address `at` inside
    the patch's `.eh_frame` (before its terminator)."""
    if not ranges:
        return b""
    out = bytearray(_CIE)
    for start, size in ranges:
        here = at + len(out)
        # length, CIE pointer (back to the CIE from this field), pc_begin (pcrel), pc_range, no augmentation
        fields = struct.pack("<I", here + 4 - at) + struct.pack("<i", start - (here + 8))
        out += _record(fields + struct.pack("<I", size) + b"\x00")
    assert len(out) == eh_frame_size(len(ranges))
    return bytes(out)


class FirstCalls:
    """The patch linker's part in placing them (`patch_link._Linker` derives from this):
    which functions get a flag, and the preambles, marks and CFI written into the image
    once `layout` has made room (`first_calls`, `marks_off`, `flags_off`, `stub_cfi_off`)."""

    objs: list[ObjectFile]
    loaded: dict[str, list[tuple[int, int]]]
    globals: dict[str, tuple[int, int]]
    offsets: dict[tuple[int, int], tuple[str, int]]
    seg_base: dict[str, int]
    first_calls: dict[tuple[int, int], list[str]]
    marks_off: int
    flags_off: int
    stub_cfi_off: int

    def first_call_sections(self) -> dict[tuple[int, int], list[str]]:
        """The code sections whose first byte starts a function this patch defines (as
        `functions` picks them), with those functions' names: each gets a first-call flag."""
        out: dict[tuple[int, int], list[str]] = {}
        seen: set[str] = set()
        code = set(self.loaded["rx"])
        for oi, obj in enumerate(self.objs):
            for sym in obj.symbols:
                if sym.type != STT_FUNC or not sym.defined or not sym.name or (oi, sym.shndx) not in code:
                    continue
                if sym.bind != STB_LOCAL and self.globals.get(sym.name, (oi,))[0] != oi:
                    continue
                if sym.name not in seen and sym.value == 0:
                    out.setdefault((oi, sym.shndx), []).append(sym.name)
                seen.add(sym.name)
        return out

    def place_first_calls(self, buf: dict[str, bytearray]) -> dict[int, int]:
        """Writes each flagged function's preamble, mark and unwind info (first_call_stubs.py);
        returns body address -> entry address."""
        entries: dict[int, int] = {}
        ranges: list[tuple[int, int]] = []
        rx, marks = self.seg_base["rx"], self.marks_off
        for i, key in enumerate(self.first_calls):
            body = rx + self.offsets[key][1]
            entry, flag, at = body - PREAMBLE, self.seg_base["rw"] + self.flags_off + i, rx + marks + MARK * i
            buf["rx"][entry - rx : body - rx] = preamble(entry, flag, at)
            buf["rx"][at - rx : at - rx + MARK] = mark(at, flag, body)
            entries[body] = entry
            ranges.append((entry, PREAMBLE))
        if self.first_calls:
            ranges.append((rx + marks, MARK * len(self.first_calls)))
            cfi = eh_frame(self.seg_base["r"] + self.stub_cfi_off, ranges)
            buf["r"][self.stub_cfi_off : self.stub_cfi_off + len(cfi)] = cfi
        return entries

    def first_call_flags(self) -> dict[str, int]:
        """Each flagged function's flag address, by name."""
        base = self.seg_base["rw"] + self.flags_off
        return {name: base + i for i, names in enumerate(self.first_calls.values()) for name in names}
