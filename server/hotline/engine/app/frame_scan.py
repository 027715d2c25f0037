"""Which old function copies have a frame on a thread's stack (x86-64, Linux /proc).

Run inside the stop helper (`thread_stop.py`, which imports this by file, not through the
hotline package), on stacks copied while the threads were held. A thread has a frame in an
old copy when its RIP is inside it (past its first byte: a thread at the entry takes the
entry jump), or when its stack holds a return address into it. A stack word is taken for a
return address only if the bytes before it decode as a `call` (E8 rel32, or FF /2 with any
addressing form): a stale local or a pointer that merely lies inside the range is not a
frame. Only the stack from RSP up is read (the live frames), bounded by `SCAN_LIMIT` and by
the stack's mapping.
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Callable

SCAN_LIMIT = 256 << 10  # bytes above a thread's RSP searched for return addresses
Frames = list[tuple[int, int]]  # (start, end) of each old copy, as the engine listed them


def mappings(maps: str) -> list[tuple[int, int]]:
    """(start, end) of each mapping listed in /proc/PID/maps, in address order."""
    out = []
    for line in maps.splitlines():
        lo, _, hi = line[: line.find(" ")].partition("-")
        out.append((int(lo, 16), int(hi, 16)))
    return out


def stack_end(spans: list[tuple[int, int]], starts: list[int], rsp: int) -> int:
    """The end of the mapping that holds `rsp` (`spans` from `mappings`, `starts` their
    starts), capped at `SCAN_LIMIT` above it; 0 when no mapping holds it."""
    at = bisect.bisect_right(starts, rsp) - 1
    if at < 0 or rsp >= spans[at][1]:
        return 0
    return min(spans[at][1], rsp + SCAN_LIMIT)


def find_live(
    frames: Frames, rip: int, rsp: int, stack: bytes, read: Callable[[int, int], bytes]
) -> list[tuple[int, str]]:
    """(index in `frames`, "running" or "called") for every old copy with a frame on this
    thread: "running" when its RIP is inside the copy, "called" for a return address."""
    if not frames:
        return []
    order = sorted(range(len(frames)), key=lambda i: frames[i][0])
    starts = [frames[i][0] for i in order]
    lo, hi = starts[0], max(end for _, end in frames)

    def inside(address: int) -> int | None:
        at = bisect.bisect_right(starts, address) - 1
        if at < 0:
            return None
        start, end = frames[order[at]]
        return order[at] if start < address < end else None

    found: dict[int, str] = {}
    running = inside(rip)
    if running is not None:
        found[running] = "running"
    skew = (-rsp) % 8  # words are 8-aligned addresses
    count = (len(stack) - skew) // 8
    words = struct.unpack_from(f"<{count}Q", stack, skew) if count > 0 else ()
    for word in {w for w in words if lo < w < hi}:
        index = inside(word)
        if index is not None and index not in found and follows_call(read(word - 7, 7)):
            found[index] = "called"
    return sorted(found.items())


def follows_call(before: bytes) -> bool:
    """Whether the 7 bytes before an address end with a call instruction."""
    if len(before) != 7:
        return False
    if before[2] == 0xE8:  # call rel32
        return True
    for length in range(2, 8):  # call r/m64: FF /2, optionally after a REX prefix
        at = 7 - length
        if before[at] == 0xFF and _ff2_length(before[at + 1 :]) == length:
            return True
        rex = 0x40 <= before[at] <= 0x4F
        if rex and length > 2 and before[at + 1] == 0xFF and _ff2_length(before[at + 2 :]) == length - 1:
            return True
    return False


def _ff2_length(rest: bytes) -> int | None:
    """Length of `FF /2` (the FF byte included) whose ModRM byte starts `rest`; None if
    that byte is not /2."""
    if not rest:
        return None
    modrm = rest[0]
    mod, reg, rm = modrm >> 6, (modrm >> 3) & 7, modrm & 7
    if reg != 2:
        return None
    length = 2
    if mod == 3:
        return length
    if rm == 4:  # SIB byte
        length += 1
        if mod == 0 and len(rest) > 1 and rest[1] & 7 == 5:
            return length + 4  # SIB with no base: disp32
    if mod == 0:
        return length + 4 if rm == 5 else length  # RIP-relative disp32
    return length + (1 if mod == 1 else 4)
