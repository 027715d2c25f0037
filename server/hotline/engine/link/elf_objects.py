"""Relocatable ELF objects, read into plain data: sections, symbols, relocations.

The headers and tables are decoded with `struct`: an object is read once per changed
codegen unit on every save, and building pyelftools' parser for each file costs more
(about 28 ms) than reading the whole object this way.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

SHF_WRITE = 0x1
SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4
SHF_TLS = 0x400
SHT_PROGBITS = 1
SHT_SYMTAB = 2
SHT_RELA = 4
SHT_NOBITS = 8
SHT_INIT_ARRAY = 14
SHT_FINI_ARRAY = 15
SHT_X86_64_UNWIND = 0x70000001
LOADED_TYPES = (SHT_PROGBITS, SHT_NOBITS, SHT_INIT_ARRAY, SHT_FINI_ARRAY, SHT_X86_64_UNWIND)
SHN_XINDEX = 0xFFFF
EHDR = struct.Struct("<16sHHIQQQIHHHHHH")  # ELF64 file header
SHDR = struct.Struct("<IIQQQQIIQQ")  # ELF64 section header
SHN_UNDEF = 0
SHN_ABS = 0xFFF1
SHN_COMMON = 0xFFF2
STT_FUNC = 2
STT_SECTION = 3
STT_TLS = 6
STB_LOCAL = 0
STB_WEAK = 2


def align(v: int, a: int) -> int:
    """`v` rounded up to a multiple of `a` (an offset to a section's or segment's alignment)."""
    return -(-v // a) * a


@dataclass(slots=True)
class Reloc:
    offset: int
    type: int
    sym: int
    addend: int


@dataclass(slots=True)
class Section:
    index: int
    name: str
    type: int
    flags: int
    align: int
    size: int
    data: bytes
    file_offset: int
    relocs: list[Reloc] = field(default_factory=list)

    @property
    def alloc(self) -> bool:
        return bool(self.flags & SHF_ALLOC)

    @property
    def tls(self) -> bool:
        return bool(self.flags & SHF_TLS)


@dataclass(slots=True)
class Symbol:
    name: str
    value: int
    size: int
    type: int
    bind: int
    shndx: int

    @property
    def defined(self) -> bool:
        return self.shndx != SHN_UNDEF


@dataclass(eq=False)  # compared by identity: the object cache shares unchanged ones
class ObjectFile:
    path: Path
    sections: dict[int, Section]
    symbols: list[Symbol]

    def section_symbols(self, index: int) -> list[Symbol]:
        """Named symbols defined in section `index`."""
        return [s for s in self.symbols if s.shndx == index and s.name and s.type != STT_SECTION]


def read_symbols(data: bytes, strtab: bytes) -> list[Symbol]:
    out = []
    for name, info, _other, shndx, value, size in struct.iter_unpack("<IBBHQQ", data):
        end = strtab.index(b"\0", name)
        out.append(Symbol(strtab[name:end].decode(), value, size, info & 0xF, info >> 4, shndx))
    return out


class ObjectFormatError(Exception):
    """The file is not a 64-bit little-endian relocatable ELF object."""


def read_object(path: Path, raw: bytes | None = None) -> ObjectFile:
    """Parses the object at `path` (or its already-read bytes `raw`)."""
    if raw is None:
        raw = path.read_bytes()
    if raw[:6] != b"\x7fELF\x02\x01":
        raise ObjectFormatError(f"{path} is not a 64-bit little-endian ELF object")
    ehdr = EHDR.unpack_from(raw)
    shoff, shnum, shstrndx = ehdr[6], ehdr[12], ehdr[13]
    # More than 0xff00 sections: the real count and string-table index live in section 0.
    first = SHDR.unpack_from(raw, shoff)
    shnum = shnum or first[5]
    shstrndx = first[6] if shstrndx == SHN_XINDEX else shstrndx
    headers = [SHDR.unpack_from(raw, shoff + i * SHDR.size) for i in range(shnum)]

    def body(h) -> bytes:
        return b"" if h[1] == SHT_NOBITS else raw[h[4] : h[4] + h[5]]

    names = body(headers[shstrndx])
    sections: dict[int, Section] = {}
    symbols: list[Symbol] = []
    relas: list[tuple[int, bytes]] = []
    for i, h in enumerate(headers):
        name_at, stype, flags, _addr, offset, size, link, info, align, _entsize = h
        if stype == SHT_SYMTAB:
            symbols = read_symbols(body(h), body(headers[link]))
        elif stype == SHT_RELA:
            relas.append((info, body(h)))
        elif i and stype in LOADED_TYPES:
            name = names[name_at : names.index(b"\0", name_at)].decode()
            kind = SHT_NOBITS if stype == SHT_NOBITS else SHT_PROGBITS
            sections[i] = Section(i, name, kind, flags, max(1, align), size, body(h), offset)
    for target, data in relas:
        if target in sections:
            sections[target].relocs = [
                Reloc(off, info & 0xFFFFFFFF, info >> 32, addend)
                for off, info, addend in struct.iter_unpack("<QQq", data)
            ]
    return ObjectFile(path, sections, symbols)
