"""The DWARF and symbols of a linked patch, for its debug ELF (debug_elf.py).

The objects' `.debug_*` sections are not loaded into the app; they are relocated here, off
the save's path, with the patch linker's own resolution, so they describe the code where
this link placed it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from hotline.engine.errors import PatchLinkError
from hotline.engine.link.elf_objects import SHT_NOBITS, STB_LOCAL, STT_SECTION, ObjectFile, Symbol, align
from hotline.engine.link.x86_64_relocations import (
    R_X86_64_32,
    R_X86_64_32S,
    R_X86_64_64,
    R_X86_64_DTPOFF32,
    R_X86_64_DTPOFF64,
    R_X86_64_PC64,
)

if TYPE_CHECKING:
    from hotline.engine.link.patch_link import Target


class PatchDebugInfo:
    """The patch linker's part in describing the patch (`patch_link._Linker` derives from
    this): its DWARF, functions and segments, from what `link` placed (`seg_base`,
    `sizes`, `eh_frame_off`, `entries`)."""

    objs: list[ObjectFile]
    seg_base: dict[str, int]
    sizes: dict[str, int]
    eh_frame_off: int
    entries: dict[int, int]
    resolve: Callable[[int, int], Target]
    placed_functions: Callable[[], Iterator[tuple[int, Symbol, int]]]

    def debug_sections(self, bias: int = 0) -> dict[str, bytes]:
        """The objects' non-loaded DWARF sections (`.debug_*`), each name's contributions
        concatenated, with their relocations applied for where this link placed the code:
        a relocation against another debug section points into the concatenation, any
        other one is resolved as the code's relocations are (`resolve`). A target that is
        not loaded (a skipped `.init_array`) or a shared-library symbol gets 0. `bias` is
        subtracted from every 64-bit address (a file that describes the code relative to a
        load base)."""
        bases: dict[tuple[int, int], int] = {}
        merged: dict[str, bytearray] = {}
        pieces: list[tuple[int, int, str, int]] = []
        for oi, obj in enumerate(self.objs):
            for si, sec in obj.sections.items():
                if sec.alloc or not sec.name.startswith(".debug_") or sec.type == SHT_NOBITS:
                    continue
                out = merged.setdefault(sec.name, bytearray())
                out.extend(b"\0" * (align(len(out), sec.align) - len(out)))
                bases[(oi, si)] = len(out)
                pieces.append((oi, si, sec.name, len(out)))
                out.extend(sec.data)
        for oi, si, name, base in pieces:
            obj, out = self.objs[oi], merged[name]
            for r in obj.sections[si].relocs:
                sym = obj.symbols[r.sym]
                if (oi, sym.shndx) in bases and (sym.type == STT_SECTION or sym.bind == STB_LOCAL):
                    value = bases[(oi, sym.shndx)] + (0 if sym.type == STT_SECTION else sym.value)
                else:
                    try:
                        kind, at = self.resolve(oi, r.sym)
                    except PatchLinkError:
                        kind, at = "abs", 0
                    value = 0 if kind == "import" else int(at)
                    if kind == "abs" and r.type == R_X86_64_64:
                        value -= bias
                value += r.addend
                if r.type in (R_X86_64_64, R_X86_64_DTPOFF64, R_X86_64_PC64):
                    if r.type == R_X86_64_PC64:
                        value -= base + r.offset
                    struct.pack_into("<Q", out, base + r.offset, value & 0xFFFFFFFFFFFFFFFF)
                elif r.type in (R_X86_64_32, R_X86_64_32S, R_X86_64_DTPOFF32):
                    struct.pack_into("<I", out, base + r.offset, value & 0xFFFFFFFF)
        return {name: bytes(data) for name, data in merged.items()}

    def debug_functions(self) -> list[tuple[str, int, int, bool]]:
        """(name, address, size, global) of every function symbol placed in the image; a
        function with a first-call preamble starts at it, so profilers and debuggers name the
        preamble's instructions as the function's."""
        out = []
        for _, sym, at in self.placed_functions():
            entry = self.entries.get(at, at)
            out.append((sym.name, entry, sym.size + at - entry, sym.bind != STB_LOCAL))
        return out

    def segment_layout(self) -> dict[str, tuple[int, int]]:
        """(address, size) of each segment, and of the `.eh_frame` inside the r segment."""
        out = {seg: (self.seg_base[seg], self.sizes[seg]) for seg in ("rx", "r", "rw")}
        out["eh_frame"] = (self.seg_base["r"] + self.eh_frame_off, self.sizes["r"] - self.eh_frame_off)
        return out
