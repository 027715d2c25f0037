"""x86-64 ELF relocations: their types, and how the patch linker writes each into the image.

The platform seam of the patch linker (patch_link.py): it places sections and resolves
symbols (`Target`) for any platform; what a relocation type means, which GOT slots, TLS
pairs and import stubs it needs and how its value is encoded are x86-64's, here.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

from hotline.engine.errors import PatchLinkError
from hotline.engine.link.elf_objects import ObjectFile
from hotline.engine.link.executable import Executable

if TYPE_CHECKING:
    from hotline.engine.link.patch_link import Target

R_X86_64_64 = 1
R_X86_64_PC32 = 2
R_X86_64_PLT32 = 4
R_X86_64_GOTPCREL = 9
R_X86_64_32 = 10
R_X86_64_32S = 11
R_X86_64_DTPOFF64 = 17
R_X86_64_TLSGD = 19
R_X86_64_TLSLD = 20
R_X86_64_DTPOFF32 = 21
R_X86_64_GOTTPOFF = 22
R_X86_64_TPOFF32 = 23
R_X86_64_PC64 = 24
R_X86_64_GOTPCRELX = 41
R_X86_64_REX_GOTPCRELX = 42
GOT_RELOCS = {R_X86_64_GOTPCREL, R_X86_64_GOTPCRELX, R_X86_64_REX_GOTPCRELX}
EXE_TLS_MODULE = 1  # glibc gives the main executable's TLS block module id 1


class X86_64Relocations:
    """The patch linker's part in applying relocations (`patch_link._Linker` derives from
    this), once `layout` has placed the segments, GOT slots (`got_values`), TLS pairs
    (`tls_pairs`, `pairs_off`) and import stubs (`stubs`, `stub_off`)."""

    objs: list[ObjectFile]
    exe: Executable
    seg_base: dict[str, int]
    tls_pairs: dict[tuple[int, int] | None, int]
    pairs_off: int
    stubs: dict[str, int]
    stub_off: int
    resolve: Callable[[int, int], Target]

    def apply(
        self, out: bytearray, seg: str, sec_off: int, sec_addr: int, oi: int, r, got_values, imports, entries
    ) -> None:
        """Writes relocation `r` of object `oi`'s section at `sec_off` in segment `seg` (its
        bytes `out`, placed at `sec_addr`): through the GOT, a TLS pair or an import stub,
        or straight at its target; a shared-library pointer in data becomes an import."""
        at = sec_off + r.offset
        p = sec_addr + r.offset
        t = r.type
        if t in GOT_RELOCS or t == R_X86_64_GOTTPOFF:
            value = got_values[(oi, r.sym, t == R_X86_64_GOTTPOFF)] + r.addend - p
            struct.pack_into("<i", out, at, self._fits32(value, oi, r))
            return
        if t in (R_X86_64_TLSGD, R_X86_64_TLSLD):
            pair = self.tls_pairs[(oi, r.sym) if t == R_X86_64_TLSGD else None]
            value = self.seg_base["rw"] + self.pairs_off + 16 * pair + r.addend - p
            struct.pack_into("<i", out, at, self._fits32(value, oi, r))
            return
        kind, target = self.resolve(oi, r.sym)
        if t in (R_X86_64_DTPOFF32, R_X86_64_DTPOFF64):
            if kind != "tls":
                raise PatchLinkError("HL1099", "DTPOFF relocation against a non-TLS symbol")
            fmt = "<i" if t == R_X86_64_DTPOFF32 else "<q"
            struct.pack_into(fmt, out, at, int(target) + r.addend)
            return
        if kind == "import":
            name = str(target)
            if t in (R_X86_64_PLT32, R_X86_64_PC32) and name in self.stubs:
                target, kind = self.seg_base["rx"] + self.stub_off + 8 * self.stubs[name], "abs"
            elif t == R_X86_64_64 and seg == "rw" and r.addend == 0 and p % 8 == 0:
                imports.append((p, name))
                return
            else:
                raise PatchLinkError(
                    "HL1099", f"cannot reach shared-library symbol {name} from patched code", name
                )
        if t == R_X86_64_TPOFF32:
            if kind != "tls":
                raise PatchLinkError("HL1099", "local-exec TLS relocation against a non-TLS symbol")
            struct.pack_into("<i", out, at, self._fits32(self.exe.tpoff(int(target)) + r.addend, oi, r))
            return
        if kind == "tls":
            raise PatchLinkError("HL1099", f"unsupported relocation type {t} against a thread-local")
        s = int(target)
        # A reference to a function's first byte (a call or jump ends right after its rel32)
        # enters at its preamble; one to a byte inside it (a jump table's label) does not.
        if r.addend == (-4 if t in (R_X86_64_PC32, R_X86_64_PLT32) else 0):
            s = entries.get(s, s)
        if t == R_X86_64_64:
            struct.pack_into("<Q", out, at, (s + r.addend) & 0xFFFFFFFFFFFFFFFF)
        elif t in (R_X86_64_PC32, R_X86_64_PLT32):
            struct.pack_into("<i", out, at, self._fits32(s + r.addend - p, oi, r))
        elif t == R_X86_64_PC64:
            struct.pack_into("<q", out, at, s + r.addend - p)
        elif t in (R_X86_64_32, R_X86_64_32S):
            struct.pack_into(
                "<i" if t == R_X86_64_32S else "<I",
                out,
                at,
                self._fits32(s + r.addend, oi, r, t == R_X86_64_32S),
            )
        else:
            raise PatchLinkError("HL1099", f"unsupported relocation type {t} in {self.objs[oi].path.name}")

    def _fits32(self, v: int, oi: int, r, signed: bool = True) -> int:
        lo, hi = (-(1 << 31), (1 << 31) - 1) if signed else (0, (1 << 32) - 1)
        if not lo <= v <= hi:
            name = self.objs[oi].symbols[r.sym].name or "a section"
            raise PatchLinkError("HL1099", f"relocation to {name} out of 32-bit range (type {r.type})", name)
        return v
