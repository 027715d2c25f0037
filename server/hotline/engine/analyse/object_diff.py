"""Which functions' code really changed between two builds of a crate.

A function's fingerprint is its bytes with every relocation site zeroed, plus what each
relocation points at: a named symbol by name, an anonymous constant by its contents.
Code that only moved, or whose callees moved, keeps its fingerprint.

"Its contents" is only the bytes the relocation refers to: the constant's symbol when it
has a size, the one NUL-terminated string at the referenced offset of a merged string pool
(`SHF_MERGE|SHF_STRINGS`, e.g. `.rodata.str1.1`), the one entry of a merged fixed-size pool
(`.rodata.cstN`), else the whole section (rustc gives most constants a section of their own).
So editing one string of a pool changes no function that refers to another string of it.

Each fingerprint has two halves: the function's behaviour, and the same with the line and
column of every panic `Location` it refers to left out. A function whose behaviour changed
but whose second half did not only *moved* (a line was inserted above it): it is patched
like any changed function, but it is not one the user edited (`FunctionChanges.moved`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from hotline.engine.link.elf_objects import STT_FUNC, STT_SECTION, ObjectFile, Section

_ANON_PREFIXES = ("anon.", ".L", "alloc_")
SHF_MERGE = 0x10
SHF_STRINGS = 0x20
R_X86_64_64 = 1
# x86-64 relocations relative to the place: their addend is the target's offset minus the
# distance from the place to the end of the instruction (4 for the usual rel32 operand).
_PC_RELATIVE = {2, 4, 9, 24, 26, 41, 42}
_HALF = 16  # bytes of each half of a fingerprint
_LOCATION_SIZE = 24  # core::panic::Location: (&str file: pointer, length), line: u32, col: u32


@dataclass(frozen=True)
class FunctionChanges:
    changed: list[str]
    added: list[str]
    removed: list[str]
    # The changed functions whose source did not change: only the line or column of a panic
    # Location they refer to did (code above them grew or shrank). Patched like the others;
    # kept apart only so that front ends do not show them as edited.
    moved: list[str] = field(default_factory=list)

    def merge(self, other: FunctionChanges) -> FunctionChanges:
        return FunctionChanges(
            self.changed + other.changed,
            self.added + other.added,
            self.removed + other.removed,
            self.moved + other.moved,
        )

    @property
    def any(self) -> bool:
        return bool(self.changed or self.added or self.removed)

    @property
    def edited(self) -> list[str]:
        """The changed functions whose source changed (changed minus moved)."""
        moved = set(self.moved)
        return [n for n in self.changed if n not in moved]


def _string_at(data: bytes, offset: int) -> tuple[int, bytes]:
    """(start, bytes) of the NUL-terminated string of a string pool that holds `offset`."""
    offset = max(0, min(offset, len(data)))
    start = data.rfind(b"\0", 0, offset) + 1
    end = data.find(b"\0", offset)
    return start, data[start : end if end >= 0 else len(data)]


def _pool_entry_size(sec: Section) -> int | None:
    m = re.match(r"\.rodata\.cst(\d+)$", sec.name)
    return int(m.group(1)) if m else None


def _target(
    obj: ObjectFile, sym_index: int, addend: int, rtype: int | None, locations: bool, depth: int = 0
) -> tuple[str, int]:
    """(what a relocation points at, the addend to compare) for the relocation's symbol and
    addend. `locations`: compare the line and column of a panic Location it points at."""
    sym = obj.symbols[sym_index]
    if sym.type != STT_SECTION and sym.name and not sym.name.startswith(_ANON_PREFIXES):
        return sym.name, addend
    sec = obj.sections.get(sym.shndx)
    if sec is None:
        return f"<section {sym.shndx}>", addend
    if sec.name.startswith(".text."):
        return sec.name, addend
    bias = 4 if rtype in _PC_RELATIVE else 0
    if sym.type != STT_SECTION and sym.size:  # a sized anonymous constant: its own bytes
        start, size = sym.value, sym.size
    elif sec.flags & SHF_MERGE and sec.flags & SHF_STRINGS:  # one string of a merged pool
        offset = sym.value + addend + bias
        start, text = _string_at(sec.data, offset)
        h = hashlib.blake2b(text, digest_size=12).hexdigest()
        return f"str:{h}+{offset - start}", -bias
    elif sec.flags & SHF_MERGE and _pool_entry_size(sec):  # one entry of a merged pool
        entry = _pool_entry_size(sec) or 1
        offset = sym.value + addend + bias
        start, size = offset - offset % entry, entry
        return "data:" + _contents(obj, sec, start, size, locations, depth), offset - start - bias
    else:  # a section of its own (or an unsized symbol in one): the whole section
        return "data:" + _contents(obj, sec, 0, sec.size, locations, depth) + f"+{sym.value}", addend
    return "data:" + _contents(obj, sec, start, size, locations, depth), addend


def _is_location(obj: ObjectFile, sec: Section, start: int, size: int) -> bool:
    """A panic Location: 24 bytes whose first 8 are a pointer to a string and the next 8 its
    length; the last 8 are its line and column."""
    if size != _LOCATION_SIZE or start + size > len(sec.data):
        return False
    relocs = [r for r in sec.relocs if start <= r.offset < start + size]
    if len(relocs) != 1 or relocs[0].offset != start or relocs[0].type != R_X86_64_64:
        return False
    target = obj.sections.get(obj.symbols[relocs[0].sym].shndx)
    length = int.from_bytes(sec.data[start + 8 : start + 16], "little")
    return target is not None and not target.name.startswith(".text") and 0 < length < 4096


def _contents(obj: ObjectFile, sec: Section, start: int, size: int, locations: bool, depth: int) -> str:
    """Hash of a constant's bytes and of what its own relocations point at."""
    zero_location = not locations and _is_location(obj, sec, start, size)
    return _digest(obj, sec, start, size, locations, depth, 12, zero_location).hex()


def _digest(
    obj: ObjectFile,
    sec: Section,
    start: int,
    size: int,
    locations: bool,
    depth: int,
    digest_size: int,
    zero_location: bool = False,
) -> bytes:
    """Hash of `size` bytes at `start` with relocation sites zeroed, plus what each
    relocation points at (followed `depth` levels deep into constants, at most 4)."""
    data = bytearray(sec.data[start : start + size])
    if zero_location:
        data[16:24] = bytes(8)  # a panic Location's line and column
    h = hashlib.blake2b(digest_size=digest_size)
    if depth < 4:
        for r in sorted(sec.relocs, key=lambda r: r.offset):
            if start <= r.offset < start + size:
                width = 8 if r.type in (1, 24) else 4
                data[r.offset - start : r.offset - start + width] = bytes(width)
                target, addend = _target(obj, r.sym, r.addend, r.type, locations, depth + 1)
                h.update(f"{r.offset - start}:{r.type}:{target}:{addend};".encode())
    h.update(bytes(data))
    return h.digest()


def relocation_target(obj: ObjectFile, sym_index: int, addend: int = 0, rtype: int | None = None) -> str:
    """What a relocation points at: a symbol's name, or an anonymous constant's contents."""
    return _target(obj, sym_index, addend, rtype, True)[0]


def _half(obj: ObjectFile, sec: Section, start: int, size: int, locations: bool) -> bytes:
    # depth -1: a function's own relocations are always followed, their targets from depth 0
    return _digest(obj, sec, start, size, locations, -1, _HALF)


def _fingerprint(obj: ObjectFile, sec: Section, start: int, size: int) -> bytes:
    """Behaviour half (everything) + source half (panic Locations' lines and columns left out)."""
    return _half(obj, sec, start, size, True) + _half(obj, sec, start, size, False)


def section_fingerprint(obj: ObjectFile, sec: Section) -> bytes:
    """Fingerprint of a whole section (a static's initial value, say)."""
    return _half(obj, sec, 0, sec.size, True)


def fingerprints(objects: list[ObjectFile]) -> dict[str, bytes]:
    """Fingerprint of every named function defined in `objects`."""
    out: dict[str, bytes] = {}
    for obj in objects:
        for sym in obj.symbols:
            if sym.type == STT_FUNC and sym.defined and sym.name and sym.shndx in obj.sections:
                sec = obj.sections[sym.shndx]
                size = sym.size or sec.size - sym.value
                out.setdefault(sym.name, _fingerprint(obj, sec, sym.value, size))
    return out


def diff_functions(old: dict[str, bytes], new: dict[str, bytes]) -> FunctionChanges:
    changed = sorted(n for n in new if n in old and old[n][:_HALF] != new[n][:_HALF])
    return FunctionChanges(
        changed=changed,
        added=sorted(n for n in new if n not in old),
        removed=sorted(n for n in old if n not in new),
        moved=[n for n in changed if old[n][_HALF:] == new[n][_HALF:]],
    )
