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
