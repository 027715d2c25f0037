"""The fat executable's symbol table and TLS layout, parsed once per build and cached."""

from __future__ import annotations

import mmap
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from elftools.elf.elffile import ELFFile

from hotline.engine.link.elf_objects import STT_FUNC, STT_TLS, Symbol, read_symbols

ANCHOR = "hotline_aslr_anchor"


@dataclass
class Executable:
    """Link-time addresses of every symbol the fat build kept."""

    path: Path
    by_name: dict[str, list[Symbol]]
    tls_size: int
    tls_align: int
    code_segments: list[tuple[int, int, int]] = field(default_factory=list)  # (vaddr, filesz, offset)
    functions_at: dict[int, set[str]] = field(default_factory=dict)  # address -> function names
    dynamic: bool = True  # has a program interpreter (ld.so): LD_PRELOAD can inject the runtime
    _image: mmap.mmap | None = None

    @property
    def links_runtime(self) -> bool:
        """Whether the app links the runtime crate; if not, the engine preloads it (`preload.py`)."""
        return ANCHOR in self.by_name

    def function_copies(self, name: str) -> list[tuple[int, int]]:
        """(link-time address, size) of every copy of a function."""
        return [(s.value, s.size) for s in self.by_name.get(name, ()) if s.type == STT_FUNC]

    def code(self, address: int, size: int) -> bytes | None:
        """The file's bytes of executable code at a link-time address, or None outside it."""
        for vaddr, filesz, offset in self.code_segments:
            if vaddr <= address and address + size <= vaddr + filesz:
                if self._image is None:
                    with open(self.path, "rb") as f:
                        self._image = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
                start = offset + address - vaddr
                return self._image[start : start + size]
        return None

    def address(self, name: str) -> int | None:
        """Link-time address of a unique non-TLS symbol, globals first."""
        syms = [s for s in self.by_name.get(name, ()) if s.type != STT_TLS]
        if not syms:
            return None
        globals_ = [s for s in syms if s.bind != 0]
        return (globals_ or syms)[0].value

    def function_addresses(self, name: str) -> list[int]:
        """Every copy of a function (generic instances may exist once per codegen unit)."""
        return [s.value for s in self.by_name.get(name, ()) if s.type == STT_FUNC]

    def tls_offset(self, name: str) -> int | None:
        """Offset of a thread-local within the executable's TLS block."""
        syms = [s for s in self.by_name.get(name, ()) if s.type == STT_TLS]
        return syms[0].value if syms else None

    def tpoff(self, tls_offset: int) -> int:
        """Thread-pointer offset of a thread-local of the executable (x86-64 TLS variant II)."""
        block = -(-self.tls_size // self.tls_align) * self.tls_align
        return tls_offset - block

    def is_ambiguous(self, name: str) -> bool:
        """More than one address under this name (or none): unusable for a lookup by name."""
        return len({s.value for s in self.by_name.get(name, ()) if s.type != STT_TLS}) != 1

    def is_unique_data(self, name: str) -> bool:
        syms = self.by_name.get(name, ())
        return len(syms) == 1 and syms[0].type != STT_FUNC


def load_executable(path: Path) -> Executable:
    with open(path, "rb") as f:
        elf = ELFFile(f)
        symtab = elf.get_section_by_name(".symtab")
        if symtab is None:
            raise ValueError(f"{path} has no symbol table (was it stripped?)")
        strtab = elf.get_section(symtab["sh_link"])
        by_name: dict[str, list[Symbol]] = defaultdict(list)
        functions_at: dict[int, set[str]] = defaultdict(set)  # aliases share an address
        for sym in read_symbols(symtab.data(), strtab.data()):
            if sym.name and sym.defined:
                by_name[sym.name].append(sym)
                if sym.type == STT_FUNC:
                    functions_at[sym.value].add(sym.name)
        tls_size, tls_align = 0, 1
        code_segments = []
        dynamic = False
        for seg in elf.iter_segments():
            dynamic = dynamic or seg["p_type"] == "PT_INTERP"
            if seg["p_type"] == "PT_TLS":
                tls_size, tls_align = seg["p_memsz"], max(1, seg["p_align"])
            elif seg["p_type"] == "PT_LOAD" and seg["p_flags"] & 1:  # PF_X
                code_segments.append((seg["p_vaddr"], seg["p_filesz"], seg["p_offset"]))
    return Executable(path, dict(by_name), tls_size, tls_align, code_segments, dict(functions_at), dynamic)
