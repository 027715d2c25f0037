"""Memory layouts of a crate's own types, from the DWARF debug info of its objects.

A patch must not change the layout of a type whose values already live in the process
(a struct held in a static, a closure passed to `hotline::call`): new code would read old
bytes with new offsets. We compare size, alignment and every field's offset and type (and
an enum's discriminant and variants) between the running build and the new one.
"""

from __future__ import annotations

import io
import operator
import struct
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from elftools.dwarf.dwarfinfo import DebugSectionDescriptor, DwarfConfig, DWARFInfo

from hotline.engine.analyse.dwarf_reader import Die, DieReader, UnitDies, line_table_files
from hotline.engine.link.elf_objects import ObjectFile, Section

_TYPE_TAGS = ("DW_TAG_structure_type", "DW_TAG_union_type", "DW_TAG_enumeration_type")
_TOP_TAGS = frozenset({"DW_TAG_namespace", "DW_TAG_subprogram"})
HOT_CALL = "hot_call"


_DWARF_SECTIONS = (
    "debug_info", "debug_aranges", "debug_abbrev", "debug_frame", "eh_frame", "debug_str", "debug_loc",
    "debug_ranges", "debug_line", "debug_pubtypes", "debug_pubnames", "debug_addr", "debug_str_offsets",
    "debug_line_str", "debug_loclists", "debug_rnglists", "debug_sup", "gnu_debugaltlink", "debug_types",
)  # fmt: skip


def _relocated(obj: ObjectFile, sec: Section) -> bytes:
    """The section's bytes with its relocations applied (S + A, sections at 0): rustc's
    objects point into .debug_str and friends through relocations, and pyelftools' own
    relocator is slow and stops at the thread-local ones (R_X86_64_DTPOFF*)."""
    if not sec.relocs:
        return sec.data
    out = bytearray(sec.data)
    for r in sec.relocs:
        value = obj.symbols[r.sym].value + r.addend
        if r.type in (1, 17):  # R_X86_64_64, R_X86_64_DTPOFF64
            struct.pack_into("<Q", out, r.offset, value & 0xFFFFFFFFFFFFFFFF)
        elif r.type in (10, 11, 21):  # R_X86_64_32, _32S, _DTPOFF32
            struct.pack_into("<I", out, r.offset, value & 0xFFFFFFFF)
    return bytes(out)


class Relocations:
    """S + A of one section's relocations, computed only for the offsets looked up."""

    def __init__(self, obj: ObjectFile, sec: Section) -> None:
        self.symbols = obj.symbols
        self.relocs = sec.relocs
        self.offsets = [r.offset for r in self.relocs]
        if any(map(operator.gt, self.offsets, self.offsets[1:])):  # rustc's are in order
            self.relocs = sorted(sec.relocs, key=lambda r: r.offset)
            self.offsets = [r.offset for r in self.relocs]

    def at(self, offset: int) -> int | None:
        i = bisect_left(self.offsets, offset)
        if i < len(self.offsets) and self.offsets[i] == offset:
            r = self.relocs[i]
            return self.symbols[r.sym].value + r.addend
        return None


def debug_sections(obj: ObjectFile) -> tuple[dict[str, bytes], Section] | None:
    """The object's DWARF sections by name without the dot, and the .debug_info section;
    None without DWARF. .debug_info, by far the largest, is left unrelocated: its reader
    looks relocations up (`Relocations`) for the few entries it decodes."""
    by_name = {sec.name[1:]: sec for sec in obj.sections.values() if sec.name[1:] in _DWARF_SECTIONS}
    info = by_name.get("debug_info")
    if info is None:
        return None
    out = {name: _relocated(obj, sec) for name, sec in by_name.items() if name != "debug_info"}
    out["debug_info"] = info.data
    return out, info


def unit_reader(sections: dict[str, bytes], unit: int, relocations: Relocations) -> DieReader:
    """A reader of the compile unit at offset `unit` of the object's .debug_info."""
    return DieReader(
        sections["debug_info"],
        sections.get("debug_abbrev", b""),
        sections.get("debug_str", b""),
        sections.get("debug_line_str", b""),
        sections.get("debug_str_offsets", b""),
        unit,
        relocations.at,
    )


def unit_readers(sections: dict[str, bytes], relocations: Relocations) -> Iterator[DieReader]:
    """A reader of each compile unit of the object's .debug_info, in order. `sections` is
    read afresh for each unit, so a caller may swap in a relocated .debug_info meanwhile."""
    unit = 0
    while unit < len(sections["debug_info"]):
        reader = unit_reader(sections, unit, relocations)
        yield reader
        unit = reader.next_unit


def _dwarf_info(sections: dict[str, bytes]) -> DWARFInfo:
    """pyelftools' view of the sections, for unit headers and line programs."""
    descriptors = {
        name + "_sec": (
            DebugSectionDescriptor(io.BytesIO(sections[name]), "." + name, 0, len(sections[name]), 0)
            if name in sections
            else None
        )
        for name in _DWARF_SECTIONS
    }
    config = DwarfConfig(little_endian=True, machine_arch="x64", default_address_size=8)
    return DWARFInfo(config, **descriptors)


@dataclass(frozen=True)
class Layout:
    kind: str  # struct | union | enum
    size: int
    align: int
    fields: tuple[tuple[str, int, str], ...]  # (name, offset, type name)
    file: str | None
    line: int | None


@dataclass(frozen=True)
class LayoutChange:
    type_name: str
    description: str
    file: str | None
    line: int | None
    crosses_safe_point: bool  # a closure handed to hotline::call


@dataclass
class CrateLayouts:
    types: dict[str, Layout]
    hot_closures: set[str]  # closure types instantiated as hotline::call's F
    functions: dict[str, tuple[str, int]] = field(default_factory=dict)  # symbol -> (file, line)
    signatures: dict[str, str] = field(default_factory=dict)  # symbol -> "(param types) -> return"


def die_name(die: Die) -> str | None:
    name = die.attrs.get("DW_AT_name")
    return name if isinstance(name, str) else None


def _int(die: Die, attr: str) -> int | None:
    value = die.attrs.get(attr)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class _UnitWalk:
    """Collects the crate's types, hot closures and function locations from one unit."""

    def __init__(
        self, reader: DieReader, dies: UnitDies, files: dict[int, list[str]], crate: str, out: CrateLayouts
    ) -> None:
        """`dies` decodes what a reference names, in whichever unit of the object holds it
        (DW_FORM_ref_addr: a method's definition may name its declaration in another unit);
        `files`: each unit's source files, by unit offset."""
        self.reader, self.dies, self.files, self.crate, self.out = reader, dies, files, crate, out
        self.type_names: dict[int, str] = {}  # DIE offset -> qualified name, for hot_call's F
        self.hot_params: list[int] = []

    def run(self) -> None:
        # Types are read inside namespaces only: at the top, only namespaces and functions.
        stack = [(d, 0, ()) for d in self.reader.children(self.reader.top(), _TOP_TAGS)]
        while stack:
            die, depth, path = stack.pop()
            name = die_name(die)
            if die.tag == "DW_TAG_namespace":
                if depth > 0 or name in (self.crate, "hotline"):
                    inner = (*path, name) if name else path
                    stack += [(c, depth + 1, inner) for c in self.reader.children(die)]
            elif die.tag in _TYPE_TAGS and "DW_AT_byte_size" in die.attrs and depth > 0:
                qname = "::".join((*path, name)) if name else "::".join(path)
                self.type_names[die.offset] = qname
                children = list(self.reader.children(die))
                if qname.startswith(self.crate + "::") and "DW_AT_declaration" not in die.attrs:
                    self.out.types.setdefault(qname, self.layout(die, children))
                inner = (*path, name) if name else path
                stack += [(c, depth + 1, inner) for c in children if c.tag in _TYPE_TAGS]
            elif die.tag == "DW_TAG_subprogram":
                self.record_function(die)
                if (name or "").startswith(HOT_CALL):
                    for param in self.reader.children(die):
                        if param.tag == "DW_TAG_template_type_param" and die_name(param) == "F":
                            self.hot_params.append(param.attrs["DW_AT_type"])  # type: ignore[arg-type]
        self.out.hot_closures |= {self.type_names[t] for t in self.hot_params if t in self.type_names}

    def layout(self, die: Die, children: list[Die]) -> Layout:
        kind = {"DW_TAG_union_type": "union", "DW_TAG_enumeration_type": "enum"}.get(die.tag)
        if kind is None:
            kind = "enum" if any(c.tag == "DW_TAG_variant_part" for c in children) else "struct"
        file, line = self.file_of(die)
        size = _int(die, "DW_AT_byte_size") or 0
        return Layout(kind, size, _int(die, "DW_AT_alignment") or 0, tuple(self.fields(children)), file, line)

    def type_name(self, die: Die) -> str:
        target = die.attrs.get("DW_AT_type")
        if not isinstance(target, int):
            return "()"
        t = self.dies.die(target)
        return die_name(t) or t.tag.removeprefix("DW_TAG_")

    def fields(self, children: list[Die]) -> list[tuple[str, int, str]]:
        out = []
        for child in children:
            if child.tag == "DW_TAG_member":
                offset = _int(child, "DW_AT_data_member_location")
                out.append((die_name(child) or "?", -1 if offset is None else offset, self.type_name(child)))
            elif child.tag == "DW_TAG_variant_part":
                for v in self.reader.children(child):
                    if v.tag == "DW_TAG_member":  # the discriminant
                        offset = _int(v, "DW_AT_data_member_location")
                        out.append(("<discriminant>", -1 if offset is None else offset, self.type_name(v)))
                    elif v.tag == "DW_TAG_variant":
                        discr = _int(v, "DW_AT_discr_value")
                        for m in self.reader.children(v):
                            if m.tag == "DW_TAG_member":
                                offset = _int(m, "DW_AT_data_member_location")
                                label = f"variant {die_name(m)}" + (
                                    f" = {discr}" if discr is not None else ""
                                )
                                out.append((label, -1 if offset is None else offset, self.type_name(m)))
            elif child.tag == "DW_TAG_enumerator":
                value = _int(child, "DW_AT_const_value")
                out.append((die_name(child) or "?", -1 if value is None else value, "enumerator"))
        return out

    def file_of(self, die: Die) -> tuple[str | None, int | None]:
        f, line = _int(die, "DW_AT_decl_file"), _int(die, "DW_AT_decl_line")
        files = self.files.get(self.dies.reader(die.offset).unit, [])  # the table of die's unit
        path = files[f] if f is not None and 0 <= f < len(files) else None
        return path, line

    def record_function(self, die: Die) -> None:
        """Where a function is declared and its signature: from its subprogram DIE, or the
        declaration it is a definition of."""
        # A method's definition names only its declaration (inside the type's entry),
        # which carries the linkage name, the line and the return type.
        spec = die.attrs.get("DW_AT_specification")
        decl = self.dies.die(spec) if isinstance(spec, int) else die
        linkage = die.attrs.get("DW_AT_linkage_name", decl.attrs.get("DW_AT_linkage_name"))
        if not isinstance(linkage, str):
            return
        file, line = self.file_of(decl)
        if file and line:
            self.out.functions.setdefault(linkage, (file, line))
        if "DW_AT_low_pc" in die.attrs and linkage not in self.out.signatures:
            params = [
                self.type_name(c) for c in self.reader.children(die) if c.tag == "DW_TAG_formal_parameter"
            ]
            returns = self.type_name(decl if "DW_AT_type" in decl.attrs else die)
            self.out.signatures[linkage] = f"({', '.join(params)}) -> {returns}"


def _unit_files(sections: dict[str, bytes], reader: DieReader) -> list[str]:
    """The unit's source files, indexed as DW_AT_decl_file counts them."""
    top = reader.top()
    stmt_list = top.attrs.get("DW_AT_stmt_list")
    if not isinstance(stmt_list, int) or "debug_line" not in sections:
        return []
    header = line_table_files(sections["debug_line"], stmt_list)
    if header is not None:  # DWARF 2-4: directory 0 and file 0 are implicit
        dirs, entries = header
        names = [str(Path(dirs[d - 1]) / n) if 0 < d <= len(dirs) else n for n, d in entries]
        names.insert(0, "")
    else:  # DWARF 5: pyelftools reads its self-describing header
        dwarf = _dwarf_info(sections)
        cu = next(cu for cu in dwarf.iter_CUs() if cu.cu_offset == reader.unit)
        prog = dwarf.line_program_for_CU(cu)
        if prog is None:
            return []
        dirs = [
            d.decode(errors="replace") if isinstance(d, bytes) else str(d) for d in prog["include_directory"]
        ]
        names = [
            str(Path(dirs[e.dir_index]) / e.name.decode(errors="replace"))
            if e.dir_index < len(dirs)
            else e.name.decode(errors="replace")
            for e in prog["file_entry"]
        ]
    comp_dir = top.attrs.get("DW_AT_comp_dir")
    base = Path(comp_dir) if isinstance(comp_dir, str) else Path()
    return [str(base / f) if f else f for f in names]


def crate_layouts(objects: list[ObjectFile], crate: str) -> CrateLayouts:
    """Layouts of the types defined in `crate` (its namespace) across `objects`."""
    out = CrateLayouts({}, set(), {})
    for obj in objects:
        found = debug_sections(obj)
        if found is None:
            continue
        sections, info = found
        readers: list[DieReader] = []
        for reader in unit_readers(sections, Relocations(obj, info)):
            if reader.version >= 5 and sections["debug_info"] is info.data:
                # pyelftools reads DWARF 5 line tables through the unit headers and top entries,
                # which it decodes itself: it needs the section relocated.
                sections["debug_info"] = _relocated(obj, info)
            readers.append(reader)
        dies = UnitDies(readers)
        files = {r.unit: _unit_files(sections, r) for r in readers}
        for reader in readers:
            _UnitWalk(reader, dies, files, crate, out).run()
    return out


def _describe(name: str, old: Layout, new: Layout) -> str:
    parts = []
    if old.size != new.size:
        parts.append(f"size {old.size} → {new.size}")
    if old.align != new.align:
        parts.append(f"alignment {old.align} → {new.align}")
    before = {f[0]: f for f in old.fields}
    after = {f[0]: f for f in new.fields}
    for fname, (_, off, ty) in after.items():
        if fname not in before:
            parts.append(f"field {fname} added at {off}")
        else:
            _, old_off, old_ty = before[fname]
            if old_off != off:
                parts.append(f"field {fname} moved {old_off} → {off}")
            if old_ty != ty:
                parts.append(f"field {fname} type {old_ty} → {ty}")
    parts += [f"field {f} removed" for f in before if f not in after]
    short = name.rsplit("::", 1)[-1]
    return f"{new.kind} {short}: " + (", ".join(parts) or "field order changed")


def layout_changes(old: CrateLayouts, new: CrateLayouts) -> list[LayoutChange]:
    """Types that existed before and whose layout differs now (new types are fine)."""
    out = []
    for name, was in old.types.items():
        now = new.types.get(name)
        if now is None or (was.size, was.align, was.fields) == (now.size, now.align, now.fields):
            continue
        closure = "{closure_env#" in name
        if closure and name not in new.hot_closures:
            continue  # created and consumed by the new code itself: no old value to misread
        out.append(LayoutChange(name, _describe(name, was, now), now.file, now.line, closure))
    return out
