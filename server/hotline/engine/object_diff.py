"""Which functions' code really changed between two builds of a crate.

A function's fingerprint is its bytes with every relocation site zeroed, plus what each
relocation points at: a named symbol by name, an anonymous constant by its contents.
Code that only moved, or whose callees moved, keeps its fingerprint.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from hotline.engine.elf_objects import STT_FUNC, STT_SECTION, ObjectFile, Section

_ANON_PREFIXES = ("anon.", ".L", "alloc_")


@dataclass(frozen=True)
class FunctionChanges:
    changed: list[str]
    added: list[str]
    removed: list[str]

    def merge(self, other: FunctionChanges) -> FunctionChanges:
        return FunctionChanges(
            self.changed + other.changed, self.added + other.added, self.removed + other.removed
        )

    @property
    def any(self) -> bool:
        return bool(self.changed or self.added or self.removed)


def relocation_target(obj: ObjectFile, sym_index: int) -> str:
    """What a relocation points at: a symbol's name, or an anonymous constant's contents."""
    sym = obj.symbols[sym_index]
    if sym.type != STT_SECTION and sym.name and not sym.name.startswith(_ANON_PREFIXES):
        return sym.name
    sec = obj.sections.get(sym.shndx)
    if sec is None:
        return f"<section {sym.shndx}>"
    if sec.name.startswith(".text."):
        return sec.name
    return "data:" + hashlib.blake2b(sec.data, digest_size=12).hexdigest() + f"+{sym.value}"


def _fingerprint(obj: ObjectFile, sec: Section, start: int, size: int) -> bytes:
    code = bytearray(sec.data[start : start + size])
    h = hashlib.blake2b(digest_size=16)
    for r in sorted(sec.relocs, key=lambda r: r.offset):
        if start <= r.offset < start + size:
            width = 8 if r.type in (1, 24) else 4
            code[r.offset - start : r.offset - start + width] = bytes(width)
            h.update(f"{r.offset - start}:{r.type}:{relocation_target(obj, r.sym)}:{r.addend};".encode())
    h.update(bytes(code))
    return h.digest()


def section_fingerprint(obj: ObjectFile, sec: Section) -> bytes:
    """Fingerprint of a whole section (a static's initial value, say)."""
    return _fingerprint(obj, sec, 0, sec.size)


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
    return FunctionChanges(
        changed=sorted(n for n in new if n in old and old[n] != new[n]),
        added=sorted(n for n in new if n not in old),
        removed=sorted(n for n in old if n not in new),
    )
