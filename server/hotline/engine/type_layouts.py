"""Memory layouts of a crate's own types, from the DWARF debug info of its objects.

A patch must not change the layout of a type whose values already live in the process
(a struct held in a static, a closure passed to `hotline::call`): new code would read old
bytes with new offsets. We compare size, alignment and every field's offset and type (and
an enum's discriminant and variants) between the running build and the new one.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field
from pathlib import Path

from elftools.elf.elffile import ELFFile

from hotline.engine.elf_objects import ObjectFile

_TYPE_TAGS = ("DW_TAG_structure_type", "DW_TAG_union_type", "DW_TAG_enumeration_type")
HOT_CALL = "hot_call"


def _with_debug_relocations(obj: ObjectFile, raw: bytes) -> bytes:
    """`raw` with the relocations of its .debug_* sections applied (S + A, sections at 0),
    so pyelftools can read the DWARF without applying them itself, which is slow and
    stops at the thread-local ones (R_X86_64_DTPOFF*) rustc emits."""
    out = bytearray(raw)
    for sec in obj.sections.values():
        if not sec.name.startswith(".debug_") or not sec.relocs:
            continue
        for r in sec.relocs:
            sym = obj.symbols[r.sym]
            value = sym.value + r.addend
            at = sec.file_offset + r.offset
            if r.type in (1, 17):  # R_X86_64_64, R_X86_64_DTPOFF64
                struct.pack_into("<Q", out, at, value & 0xFFFFFFFFFFFFFFFF)
            elif r.type in (10, 11, 21):  # R_X86_64_32, _32S, _DTPOFF32
                struct.pack_into("<I", out, at, value & 0xFFFFFFFF)
    return bytes(out)


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


def _name(die) -> str | None:
    attr = die.attributes.get("DW_AT_name")
    return attr.value.decode(errors="replace") if attr else None


def _qualified(die) -> str:
    parts = []
    while die is not None and die.tag != "DW_TAG_compile_unit":
        name = _name(die)
        if name:
            parts.append(name)
        die = die.get_parent()
    return "::".join(reversed(parts))


def _type_name(die) -> str:
    if "DW_AT_type" not in die.attributes:
        return "()"
    target = die.get_DIE_from_attribute("DW_AT_type")
    return _name(target) or target.tag.removeprefix("DW_TAG_")


def _fields(die) -> list[tuple[str, int, str]]:
    out = []
    for child in die.iter_children():
        if child.tag == "DW_TAG_member":
            loc = child.attributes.get("DW_AT_data_member_location")
            out.append(
                (
                    _name(child) or "?",
                    loc.value if loc and isinstance(loc.value, int) else -1,
                    _type_name(child),
                )
            )
        elif child.tag == "DW_TAG_variant_part":
            for v in child.iter_children():
                if v.tag == "DW_TAG_member":  # the discriminant
                    loc = v.attributes.get("DW_AT_data_member_location")
                    out.append(("<discriminant>", loc.value if loc else -1, _type_name(v)))
                elif v.tag == "DW_TAG_variant":
                    discr = v.attributes.get("DW_AT_discr_value")
                    for m in v.iter_children():
                        if m.tag == "DW_TAG_member":
                            loc = m.attributes.get("DW_AT_data_member_location")
                            label = f"variant {_name(m)}" + (f" = {discr.value}" if discr else "")
                            out.append((label, loc.value if loc else -1, _type_name(m)))
        elif child.tag == "DW_TAG_enumerator":
            value = child.attributes.get("DW_AT_const_value")
            out.append((_name(child) or "?", value.value if value else -1, "enumerator"))
    return out


def _file_of(die, files: list[str]) -> tuple[str | None, int | None]:
    f, ln = die.attributes.get("DW_AT_decl_file"), die.attributes.get("DW_AT_decl_line")
    path = files[f.value] if f and 0 <= f.value < len(files) else None
    return path, (ln.value if ln else None)


def _cu_files(dwarf, cu) -> list[str]:
    prog = dwarf.line_program_for_CU(cu)
    if prog is None:
        return []
    dirs = [d.decode(errors="replace") if isinstance(d, bytes) else str(d) for d in prog["include_directory"]]
    out = []
    for entry in prog["file_entry"]:
        name = entry.name.decode(errors="replace")
        d = entry.dir_index
        base = (
            dirs[d]
            if prog.header.version >= 5 and d < len(dirs)
            else (dirs[d - 1] if 0 < d <= len(dirs) else "")
        )
        out.append(str(Path(base) / name) if base else name)
    if prog.header.version < 5:
        out.insert(0, "")  # DWARF 4 file numbers start at 1
    return out


def _record_function(die, files: list[str], out: dict[str, tuple[str, int]]) -> None:
    """Where a function is declared: its subprogram DIE, or the one it is a definition of."""
    linkage = die.attributes.get("DW_AT_linkage_name")
    if linkage is None:
        return
    decl = (
        die.get_DIE_from_attribute("DW_AT_specification") if "DW_AT_specification" in die.attributes else die
    )
    file, line = _file_of(decl, files)
    if file and line:
        out.setdefault(linkage.value.decode(errors="replace"), (file, line))


def crate_layouts(objects: list[tuple[ObjectFile, bytes]], crate: str) -> CrateLayouts:
    """Layouts of the types defined in `crate` (its namespace) across `objects` (parsed, raw)."""
    types: dict[str, Layout] = {}
    hot: set[str] = set()
    functions: dict[str, tuple[str, int]] = {}
    for obj, raw in objects:
        elf = ELFFile(io.BytesIO(_with_debug_relocations(obj, raw)))
        if not elf.has_dwarf_info():
            continue
        dwarf = elf.get_dwarf_info(relocate_dwarf_sections=False)
        for cu in dwarf.iter_CUs():
            comp_dir = cu.get_top_DIE().attributes.get("DW_AT_comp_dir")
            base = Path(comp_dir.value.decode(errors="replace")) if comp_dir else Path()
            files = [str(base / f) if f else f for f in _cu_files(dwarf, cu)]
            stack = [(d, 0) for d in cu.get_top_DIE().iter_children()]
            while stack:
                die, depth = stack.pop()
                name = _name(die)
                if die.tag == "DW_TAG_namespace":
                    if depth > 0 or name in (crate, "hotline"):
                        stack += [(c, depth + 1) for c in die.iter_children()]
                elif die.tag in _TYPE_TAGS and "DW_AT_byte_size" in die.attributes and depth > 0:
                    qname = _qualified(die)
                    if qname.startswith(crate + "::") and "DW_AT_declaration" not in die.attributes:
                        align = die.attributes.get("DW_AT_alignment")
                        kind = {"DW_TAG_union_type": "union", "DW_TAG_enumeration_type": "enum"}.get(die.tag)
                        if kind is None:
                            kind = (
                                "enum"
                                if any(c.tag == "DW_TAG_variant_part" for c in die.iter_children())
                                else "struct"
                            )
                        file, line = _file_of(die, files)
                        types.setdefault(
                            qname,
                            Layout(
                                kind,
                                die.attributes["DW_AT_byte_size"].value,
                                align.value if align else 0,
                                tuple(_fields(die)),
                                file,
                                line,
                            ),
                        )
                    stack += [(c, depth + 1) for c in die.iter_children() if c.tag in _TYPE_TAGS]
                elif die.tag == "DW_TAG_subprogram":
                    _record_function(die, files, functions)
                if die.tag == "DW_TAG_subprogram" and (name or "").startswith(HOT_CALL):
                    for param in die.iter_children():
                        if param.tag == "DW_TAG_template_type_param" and _name(param) == "F":
                            hot.add(_qualified(param.get_DIE_from_attribute("DW_AT_type")))
    return CrateLayouts(types, hot, functions)


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
