"""Links a crate's fresh objects into a patch image for a fixed address in the running app.

Why not `cc -shared`: rustc compiles a binary crate assuming its symbols live in the
executable, so statics are reached PC-relative (R_X86_64_PC32) and thread-locals through
local-exec TLS (R_X86_64_TPOFF32). A shared library cannot carry either, and a library
would get its own fresh copy of every static. Instead we link the image ourselves for an
address the runtime reserved near the executable (within rel32 reach) and resolve every
relocation against the *running* process:

* functions and read-only data of the crate: the new copies in the image;
* statics (`.data.*`/`.bss.*`) that already exist: the executable's (or an earlier patch's)
  copy, so they keep their value and their address;
* thread-locals that already exist: the executable's TLS offsets (no new TLS block);
* other crates' and std's code: their addresses in the executable;
* shared-library symbols (libc): a GOT slot the runtime fills with dlsym, and a jump stub.

The result is a flat image plus segment list; the runtime only copies bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

from hotline.engine.errors import PatchLinkError
from hotline.engine.link.elf_objects import (
    SHF_EXECINSTR,
    SHF_WRITE,
    SHN_ABS,
    SHN_COMMON,
    SHN_UNDEF,
    SHT_NOBITS,
    STB_LOCAL,
    STB_WEAK,
    STT_FUNC,
    STT_SECTION,
    STT_TLS,
    ObjectFile,
    Symbol,
    align,
)
from hotline.engine.link.executable import Executable
from hotline.engine.link.first_call_stubs import FLAG_LINE, MARK, PREAMBLE, FirstCalls, eh_frame_size
from hotline.engine.link.link_debug_info import PatchDebugInfo
from hotline.engine.link.x86_64_relocations import (
    EXE_TLS_MODULE,
    GOT_RELOCS,
    R_X86_64_GOTTPOFF,
    R_X86_64_PC32,
    R_X86_64_PLT32,
    R_X86_64_TLSGD,
    R_X86_64_TLSLD,
    X86_64Relocations,
)

PAGE = 4096
SKIPPED_SECTIONS = (".init_array", ".fini_array")


@dataclass
class ProcessSymbols:
    """What earlier patches added to the running process, keyed by symbol name."""

    data: dict[str, int] = field(default_factory=dict)
    functions: dict[str, list[int]] = field(default_factory=dict)  # every copy, oldest first
    code: dict[str, int] = field(default_factory=dict)  # newest copy of other global symbols
    sizes: dict[int, int] = field(default_factory=dict)  # function address -> size
    code_images: list[tuple[int, bytes]] = field(default_factory=list)  # (address, rx bytes)
    frozen: dict[int, str] = field(default_factory=dict)  # old copies no jump may leave

    def record(self, patch: LinkedPatch) -> None:
        """Remembers what an applied patch added, for the patches that follow it."""
        self.frozen.update(patch.frozen)
        self.data.update(patch.new_data)
        self.code.update(patch.exports)
        for name, addr in patch.functions.items():
            self.functions.setdefault(name, []).append(addr)
            self.sizes[addr] = patch.function_sizes.get(name, 0)
        for seg in patch.segments:
            if seg["prot"] == "rx":
                self.code_images.append(
                    (seg["addr"], patch.image[seg["offset"] : seg["offset"] + seg["filesz"]])
                )

    def code_bytes(self, address: int) -> bytes | None:
        """The bytes an earlier patch placed for the function at `address`, as linked."""
        size = self.sizes.get(address, 0)
        for start, image in self.code_images:
            if size and start <= address and address + size <= start + len(image):
                return image[address - start : address - start + size]
        return None


@dataclass
class LinkedPatch:
    image: bytes
    segments: list[dict]
    imports: list[tuple[int, str]]
    eh_frame: int | None
    table: list[tuple[int, int]]
    functions: dict[str, int]
    function_sizes: dict[str, int]
    exports: dict[str, int]  # global functions and read-only data, by name
    new_data: dict[str, int]
    size: int
    # The linker that placed this patch, for its debug info (`debug_elf.py`), made off the
    # critical path; not part of the patch the runtime receives.
    linker: _Linker | None = field(default=None, repr=False, compare=False)
    # Old copies that must never take an entry jump again (address -> why): their callers
    # pass values of an older layout than this patch's (function_abi.py).
    frozen: dict[int, str] = field(default_factory=dict)
    # Receipts (first_call_stubs.py): each function's first-call flag, and the flags' span
    # (address, count) in the rw segment, which the runtime reads when asked.
    first_call_flags: dict[str, int] = field(default_factory=dict)
    flags: tuple[int, int] = (0, 0)

    def body(self, name: str) -> int:
        """Where function `name`'s own code starts: after its preamble, when it has a flag."""
        return self.functions[name] + (PREAMBLE if name in self.first_call_flags else 0)


# A resolved target: ("abs", address) | ("tls", offset in the executable's TLS block) | ("import", name)
Target = tuple[str, int | str]


def is_state_section(name: str) -> bool:
    """Sections that hold a static's mutable state, which must survive a patch."""
    return (name.startswith(".data.") and not name.startswith(".data.rel.ro")) or name.startswith(".bss.")


def _segment_of(flags: int) -> str:
    if flags & SHF_EXECINSTR:
        return "rx"
    return "rw" if flags & SHF_WRITE else "r"


class _Linker(FirstCalls, X86_64Relocations, PatchDebugInfo):
    def __init__(
        self, objects: list[ObjectFile], exe: Executable, slide: int, prior: ProcessSymbols, base: int
    ):
        self.objs, self.exe, self.slide, self.prior, self.base = objects, exe, slide, prior, base
        self.placed: dict[tuple[int, int], Target] = {}
        self.loaded: dict[str, list[tuple[int, int]]] = {"rx": [], "r": [], "rw": []}
        self.offsets: dict[tuple[int, int], tuple[str, int]] = {}
        self.eh_frames: list[tuple[int, int]] = []
        self.globals: dict[str, tuple[int, int]] = {}
        for oi, obj in enumerate(objects):
            for si, sym in enumerate(obj.symbols):
                if (
                    sym.bind != STB_LOCAL
                    and sym.defined
                    and sym.shndx != SHN_COMMON
                    and sym.name not in self.globals
                ):
                    self.globals[sym.name] = (oi, si)

    # -- placement ---------------------------------------------------------------------
    def bind_existing_state(self) -> None:
        """Points each section holding an existing static or thread-local at the old copy."""
        for oi, obj in enumerate(self.objs):
            for si, sec in obj.sections.items():
                if not sec.alloc or not (sec.tls or is_state_section(sec.name)):
                    continue
                named = obj.section_symbols(si)
                if sec.tls:
                    for sym in named:
                        off = self.exe.tls_offset(sym.name)
                        if off is not None:
                            self.placed[(oi, si)] = ("tls", off - sym.value)
                            break
                    else:
                        who = named[0].name if named else sec.name
                        raise PatchLinkError(
                            "HL1003", f"new thread-local {who} cannot be added to a running process", who
                        )
                    continue
                for sym in named:
                    if sym.name in self.prior.data:
                        self.placed[(oi, si)] = ("abs", self.prior.data[sym.name] - sym.value)
                        break
                    if self.exe.is_unique_data(sym.name):
                        addr = self.exe.address(sym.name)
                        assert addr is not None
                        self.placed[(oi, si)] = ("abs", addr + self.slide - sym.value)
                        break

    def collect_loaded(self) -> None:
        for oi, obj in enumerate(self.objs):
            for si, sec in obj.sections.items():
                if not sec.alloc or (oi, si) in self.placed or sec.name.startswith(SKIPPED_SECTIONS):
                    continue
                if sec.name == ".eh_frame":
                    self.eh_frames.append((oi, si))
                else:
                    self.loaded[_segment_of(sec.flags)].append((oi, si))

    # -- resolution --------------------------------------------------------------------
    def section_target(self, oi: int, si: int) -> Target:
        if (oi, si) in self.placed:
            return self.placed[(oi, si)]
        if (oi, si) not in self.offsets:
            name = self.objs[oi].sections[si].name if si in self.objs[oi].sections else f"#{si}"
            raise PatchLinkError("HL1099", f"relocation against section {name}, which is not loaded")
        seg, off = self.offsets[(oi, si)]
        return ("abs", self.seg_base[seg] + off)

    def resolve(self, oi: int, idx: int) -> Target:
        sym = self.objs[oi].symbols[idx]
        if sym.type == STT_SECTION:
            return self.section_target(oi, sym.shndx)
        if sym.shndx == SHN_ABS:
            return ("abs", sym.value)
        if sym.bind == STB_LOCAL and sym.defined:
            kind, at = self.section_target(oi, sym.shndx)
            return (kind, int(at) + sym.value)
        if sym.name in self.globals:
            oj, sj = self.globals[sym.name]
            g = self.objs[oj].symbols[sj]
            kind, at = self.section_target(oj, g.shndx)
            return (kind, int(at) + g.value)
        if sym.name in self.prior.data:
            return ("abs", self.prior.data[sym.name])
        if sym.name in self.prior.code:  # a unit an earlier patch relinked and this one does not
            return ("abs", self.prior.code[sym.name])
        off = self.exe.tls_offset(sym.name)
        if off is not None:
            return ("tls", off)
        if sym.type == STT_TLS:
            raise PatchLinkError("HL1099", f"thread-local {sym.name} is not in the executable", sym.name)
        addr = self.exe.address(sym.name)
        if addr is not None:
            return ("abs", addr + self.slide)
        if sym.bind == STB_WEAK and sym.shndx == SHN_UNDEF:
            return ("abs", 0)
        return ("import", sym.name)

    # -- the link ----------------------------------------------------------------------
    def layout(self) -> None:
        """Gives every loaded section an offset in its segment; GOT and stubs come last."""
        self.sizes = {}
        self.first_calls = self.first_call_sections()
        for seg in ("rx", "r", "rw"):
            off = 0
            for key in self.loaded[seg]:
                sec = self.objs[key[0]].sections[key[1]]
                # a function with a first-call flag gets its preamble right before its body
                off = align(off + (PREAMBLE if key in self.first_calls else 0), sec.align)
                self.offsets[key] = (seg, off)
                off += sec.size
            if seg == "r":
                off = align(off, 8)
                self.eh_frame_off = off
                for key in self.eh_frames:
                    # Packed with no padding: a zero word between two objects' CFI would
                    # read as the terminator and hide every later object's frames.
                    sec = self.objs[key[0]].sections[key[1]]
                    self.offsets[key] = ("r", off)
                    off += sec.size
                self.stub_cfi_off = off  # the preambles' and marks' unwind info
                off += eh_frame_size(len(self.first_calls) + 1 if self.first_calls else 0)
                off += 4  # the zero terminator __register_frame stops at
            self.sizes[seg] = off
        # GOT slots and import stubs: count them first, addresses need only the segment bases.
        self.got: dict[tuple, int] = {}
        # (module id, offset) pairs that __tls_get_addr takes: general- and local-dynamic TLS,
        # which library crates use; keyed by (object, symbol), or None for the module base.
        self.tls_pairs: dict[tuple[int, int] | None, int] = {}
        self.stubs: dict[str, int] = {}
        for seg in ("rx", "r", "rw"):
            for oi, si in self.loaded[seg] + (self.eh_frames if seg == "r" else []):
                for r in self.objs[oi].sections[si].relocs:
                    if r.type in GOT_RELOCS or r.type == R_X86_64_GOTTPOFF:
                        self.got.setdefault(("sym", oi, r.sym, r.type == R_X86_64_GOTTPOFF), len(self.got))
                    elif r.type == R_X86_64_TLSGD:
                        self.tls_pairs.setdefault((oi, r.sym), len(self.tls_pairs))
                    elif r.type == R_X86_64_TLSLD:
                        self.tls_pairs.setdefault(None, len(self.tls_pairs))
                    elif r.type in (R_X86_64_PLT32, R_X86_64_PC32):
                        sym = self.objs[oi].symbols[r.sym]
                        external = sym.shndx == SHN_UNDEF and sym.name not in self.globals
                        if external and self.resolve(oi, r.sym)[0] == "import":
                            self.stubs.setdefault(sym.name, len(self.stubs))
        self.stub_off = align(self.sizes["rx"], 16)
        self.marks_off = align(self.stub_off + 8 * len(self.stubs), 16)
        self.sizes["rx"] = self.marks_off + MARK * len(self.first_calls)
        self.got_off = align(self.sizes["rw"], 16)
        self.pairs_off = self.got_off + align(8 * (len(self.got) + len(self.stubs)), 16)
        self.flags_off = align(self.pairs_off + 16 * len(self.tls_pairs), FLAG_LINE)
        self.sizes["rw"] = self.flags_off + align(len(self.first_calls), FLAG_LINE)
        self.seg_base = {}
        at = self.base
        for seg in ("rx", "r", "rw"):
            self.seg_base[seg] = at
            at = align(at + max(self.sizes[seg], 1), PAGE)
        self.end = at

    def link(self) -> LinkedPatch:
        self.bind_existing_state()
        self.collect_loaded()
        self.layout()
        buf = {seg: bytearray(self.sizes[seg]) for seg in self.sizes}
        imports: list[tuple[int, str]] = []
        for key, (seg, off) in self.offsets.items():
            sec = self.objs[key[0]].sections[key[1]]
            if sec.type != SHT_NOBITS:
                buf[seg][off : off + sec.size] = sec.data
        self.entries = self.place_first_calls(buf)

        got_base = self.seg_base["rw"] + self.got_off
        # Import stubs: `jmp *slot(%rip)`, their slots after the GOT.
        for name, i in self.stubs.items():
            slot = got_base + 8 * (len(self.got) + i)
            stub = self.seg_base["rx"] + self.stub_off + 8 * i
            buf["rx"][self.stub_off + 8 * i : self.stub_off + 8 * i + 8] = (
                b"\xff\x25" + struct.pack("<i", slot - (stub + 6)) + b"\xcc\xcc"
            )
            imports.append((slot, name))

        got_values: dict[tuple, int] = {}
        for (_, oi, idx, tpoff), i in self.got.items():
            slot_off = self.got_off + 8 * i
            kind, value = self.resolve(oi, idx)
            if tpoff:
                if kind != "tls":
                    raise PatchLinkError(
                        "HL1099", f"TLS relocation against non-TLS {self.objs[oi].symbols[idx].name}"
                    )
                struct.pack_into("<q", buf["rw"], slot_off, self.exe.tpoff(int(value)))
            elif kind == "import":
                imports.append((got_base + 8 * i, str(value)))
            elif kind == "abs":
                # a function's address taken through the GOT (a library crate's fn pointer) enters at its preamble
                struct.pack_into("<Q", buf["rw"], slot_off, self.entries.get(int(value), int(value)))
            else:
                raise PatchLinkError(
                    "HL1099", f"GOT entry for thread-local {self.objs[oi].symbols[idx].name}"
                )
            got_values[(oi, idx, tpoff)] = got_base + 8 * i

        for key, i in self.tls_pairs.items():
            offset = 0
            if key is not None:
                kind, value = self.resolve(*key)
                if kind != "tls":
                    raise PatchLinkError(
                        "HL1099", f"TLS relocation against non-TLS {self.objs[key[0]].symbols[key[1]].name}"
                    )
                offset = int(value)
            struct.pack_into("<QQ", buf["rw"], self.pairs_off + 16 * i, EXE_TLS_MODULE, offset)

        for (oi, si), (seg, off) in self.offsets.items():
            sec = self.objs[oi].sections[si]
            sec_addr = self.seg_base[seg] + off
            entries = self.entries if sec.name != ".eh_frame" else {}
            for r in sec.relocs:
                self.apply(buf[seg], seg, off, sec_addr, oi, r, got_values, imports, entries)

        functions, sizes = self.functions()
        image = b"".join(bytes(buf[s]) for s in ("rx", "r", "rw"))
        segments, file_off = [], 0
        for seg in ("rx", "r", "rw"):
            size = len(buf[seg])
            segments.append(
                {"addr": self.seg_base[seg], "offset": file_off, "filesz": size, "memsz": size, "prot": seg}
            )
            file_off += size
        return LinkedPatch(
            image=image,
            segments=[s for s in segments if s["memsz"]],
            imports=imports,
            eh_frame=self.seg_base["r"] + self.eh_frame_off if self.eh_frames or self.first_calls else None,
            table=self.jump_table(functions),
            functions=functions,
            function_sizes=sizes,
            exports=self.exports(),
            new_data=self.new_data(),
            size=self.end - self.base,
            linker=self,
            first_call_flags=self.first_call_flags(),
            flags=(self.seg_base["rw"] + self.flags_off, len(self.first_calls)),
        )

    # -- results -------------------------------------------------------------------
    def placed_functions(self) -> Iterator[tuple[int, Symbol, int]]:
        """(object index, symbol, address) of every function symbol placed in the image."""
        for oi, obj in enumerate(self.objs):
            for sym in obj.symbols:
                if sym.type == STT_FUNC and sym.defined and sym.name and (oi, sym.shndx) in self.offsets:
                    seg, off = self.offsets[(oi, sym.shndx)]
                    yield oi, sym, self.seg_base[seg] + off + sym.value

    def functions(self) -> tuple[dict[str, int], dict[str, int]]:
        """Address and size of each function the patch defines, by name."""
        out: dict[str, int] = {}
        sizes: dict[str, int] = {}
        for oi, sym, address in self.placed_functions():
            if sym.bind != STB_LOCAL and self.globals.get(sym.name, (oi,))[0] != oi:
                continue
            if sym.name not in out:
                entry = self.entries.get(address, address)  # callers enter at the preamble
                out[sym.name], sizes[sym.name] = entry, sym.size + address - entry
        return out, sizes

    def jump_table(self, functions: dict[str, int]) -> list[tuple[int, int]]:
        table = []
        for name, new in functions.items():
            olds = [a + self.slide for a in self.exe.function_addresses(name)] + self.prior.functions.get(
                name, []
            )
            table += [(old, new) for old in olds]
        return table

    def exports(self) -> dict[str, int]:
        out = {}
        for oi, obj in enumerate(self.objs):
            for sym in obj.symbols:
                placed = sym.bind != STB_LOCAL and sym.name and (oi, sym.shndx) in self.offsets
                if placed and not is_state_section(obj.sections[sym.shndx].name):
                    seg, off = self.offsets[(oi, sym.shndx)]
                    at = self.seg_base[seg] + off + sym.value
                    out.setdefault(sym.name, self.entries.get(at, at) if sym.type == STT_FUNC else at)
        return out

    def new_data(self) -> dict[str, int]:
        out = {}
        for oi, obj in enumerate(self.objs):
            for si, sec in obj.sections.items():
                if (oi, si) in self.offsets and is_state_section(sec.name):
                    seg, off = self.offsets[(oi, si)]
                    for sym in obj.section_symbols(si):
                        out[sym.name] = self.seg_base[seg] + off + sym.value
        return out

    # -- for the debug info (link_debug_info.py) ---------------------------------------
    def freeze_prior(self) -> None:
        """Snapshots what earlier patches defined, so `debug_sections` run later (on another
        thread, after more patches) resolves exactly as this link did."""
        self.prior = ProcessSymbols(data=dict(self.prior.data), code=dict(self.prior.code))


def link_patch(
    objects: list[ObjectFile], exe: Executable, slide: int, prior: ProcessSymbols, base: int
) -> LinkedPatch:
    """Links `objects` for address `base` of the process described by `exe`, `slide` and `prior`."""
    return _Linker(objects, exe, slide, prior, base).link()
