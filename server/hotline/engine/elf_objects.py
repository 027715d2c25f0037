"""Relocatable ELF objects, read into plain data: sections, symbols, relocations.

pyelftools finds the section headers; symbol and relocation tables are decoded with
`struct.iter_unpack`, which is much faster than per-entry parsing on large objects.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field
from pathlib import Path

from elftools.elf.elffile import ELFFile

SHF_WRITE = 0x1
SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4
SHF_TLS = 0x400
SHT_NOBITS = 8
SHN_UNDEF = 0
SHN_ABS = 0xFFF1
SHN_COMMON = 0xFFF2
STT_FUNC = 2
STT_SECTION = 3
STT_TLS = 6
STB_LOCAL = 0
STB_WEAK = 2


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


@dataclass
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


def read_object(path: Path, raw: bytes | None = None) -> ObjectFile:
    """Parses the object at `path` (or its already-read bytes `raw`)."""
    if raw is None:
        raw = path.read_bytes()
    elf = ELFFile(io.BytesIO(raw))
    headers = [elf.get_section(i).header for i in range(elf.num_sections())]
    names = elf.get_section(elf["e_shstrndx"]).data()

    def name_of(h) -> str:
        end = names.index(b"\0", h["sh_name"])
        return names[h["sh_name"] : end].decode()

    def body(h) -> bytes:
        return b"" if h["sh_type"] == "SHT_NOBITS" else raw[h["sh_offset"] : h["sh_offset"] + h["sh_size"]]

    sections: dict[int, Section] = {}
    symbols: list[Symbol] = []
    relas: list[tuple[int, bytes]] = []
    for i, h in enumerate(headers):
        stype = h["sh_type"]
        if stype == "SHT_SYMTAB":
            symbols = read_symbols(body(h), body(headers[h["sh_link"]]))
        elif stype == "SHT_RELA":
            relas.append((h["sh_info"], body(h)))
        elif i and stype in (
            "SHT_PROGBITS",
            "SHT_NOBITS",
            "SHT_INIT_ARRAY",
            "SHT_FINI_ARRAY",
            "SHT_AMD64_UNWIND",
        ):
            sections[i] = Section(
                i,
                name_of(h),
                SHT_NOBITS if stype == "SHT_NOBITS" else 1,
                h["sh_flags"],
                max(1, h["sh_addralign"]),
                h["sh_size"],
                body(h),
                h["sh_offset"],
            )
    for target, data in relas:
        if target in sections:
            sections[target].relocs = [
                Reloc(off, info & 0xFFFFFFFF, info >> 32, addend)
                for off, info, addend in struct.iter_unpack("<QQq", data)
            ]
    return ObjectFile(path, sections, symbols)
