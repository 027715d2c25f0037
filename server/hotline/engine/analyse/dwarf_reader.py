"""A fast reader of the DWARF debugging entries (DIEs) of one compile unit.

Hotline reads a small part of a codegen unit's debug info (its own crate's types and
functions), but a unit of an async web app holds thousands of DIEs for core, alloc and
tokio instances. pyelftools decodes every DIE it passes over (about 25 µs each, 100 ms
for one such unit); this reader steps over a subtree by adding up its attributes' sizes
and decodes only the DIEs it is asked for. pyelftools still parses the unit headers and
the line programs.
"""

from __future__ import annotations

import struct
from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from elftools.dwarf.enums import ENUM_DW_AT, ENUM_DW_FORM, ENUM_DW_TAG

_TAGS = {v: k for k, v in ENUM_DW_TAG.items() if isinstance(v, int)}
_ATS = {v: k for k, v in ENUM_DW_AT.items() if isinstance(v, int)}
F = {k.removeprefix("DW_FORM_"): v for k, v in ENUM_DW_FORM.items() if isinstance(v, int)}
_FIXED = {
    F["data1"]: 1, F["data2"]: 2, F["data4"]: 4, F["data8"]: 8, F["data16"]: 16,
    F["flag"]: 1, F["flag_present"]: 0, F["implicit_const"]: 0,
    F["ref1"]: 1, F["ref2"]: 2, F["ref4"]: 4, F["ref8"]: 8, F["ref_sig8"]: 8, F["ref_sup4"]: 4, F["ref_sup8"]: 8,
    F["strx1"]: 1, F["strx2"]: 2, F["strx3"]: 3, F["strx4"]: 4,
    F["addrx1"]: 1, F["addrx2"]: 2, F["addrx3"]: 3, F["addrx4"]: 4,
}  # fmt: skip
_OFFSET_SIZED = {F["strp"], F["sec_offset"], F["ref_addr"], F["line_strp"], F["strp_sup"]}
_ULEB_SIZED = {F["udata"], F["ref_udata"], F["strx"], F["addrx"], F["loclistx"], F["rnglistx"]}
_LEB = _ULEB_SIZED | {F["sdata"]}
_RELOCATED = {F["addr"], F["sec_offset"], F["ref_addr"]}  # hold addresses or section offsets
# How die() decodes a form: the common ones inline, the rest through _value().
_INT, _REF, _RELOC_INT, _STRP, _FLAG, _OTHER = range(6)
_CU_REFS = {F["ref1"], F["ref2"], F["ref4"], F["ref8"], F["ref_udata"]}


class DwarfFormatError(Exception):
    """Debug info this reader does not understand."""


@dataclass(slots=True)
class Die:
    offset: int  # in .debug_info
    tag: str  # "DW_TAG_structure_type", ...
    attrs: dict[str, object]  # "DW_AT_name" -> str | int | bytes | bool; references are .debug_info offsets
    has_children: bool
    end: int  # where its children (or its next sibling) start


def _uleb(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _sleb(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return (value - (1 << shift) if byte & 0x40 else value), pos


def _cstring(data: bytes, pos: int) -> str:
    return data[pos : data.index(b"\0", pos)].decode(errors="replace")


@dataclass(slots=True)
class _Abbrev:
    tag: str
    has_children: bool
    specs: tuple[tuple[str, int, int, int, int], ...]  # (attribute, how, size, form, implicit)
    # How to step over the attributes: (fixed bytes, then a variable-size form) pairs,
    # then a last run of fixed bytes.
    steps: tuple[tuple[int, int, int], ...]  # (fixed bytes before, form, implicit constant)
    tail: int


class DieReader:
    """DIEs of the unit at `unit_offset` of `info`, decoded on demand."""

    relocated: Callable[[int], int | None]

    def __init__(
        self,
        info: bytes,
        abbrev: bytes,
        strs: bytes,
        line_strs: bytes,
        str_offsets: bytes,
        unit_offset: int,
        relocated: Callable[[int], int | None] = lambda _at: None,
    ) -> None:
        """`relocated(offset)`: the value a relocation of `info` puts at `offset`, if any
        (objects leave those fields zero), looked up only for the DIEs decoded."""
        self.info, self.strs, self.line_strs, self.str_offsets = info, strs, line_strs, str_offsets
        self.relocated = relocated
        self.unit = unit_offset
        length = struct.unpack_from("<I", info, unit_offset)[0]
        if length >= 0xFFFFFFF0:
            raise DwarfFormatError("64-bit DWARF is not supported")
        self.next_unit = unit_offset + 4 + length
        self.version = version = struct.unpack_from("<H", info, unit_offset + 4)[0]
        if version >= 5:
            _unit_type, self.addr_size, abbrev_at = struct.unpack_from("<BBI", info, unit_offset + 6)
            abbrev_at = relocated(unit_offset + 8) or abbrev_at
            self.top_offset = unit_offset + 12
        elif version >= 2:
            abbrev_at, self.addr_size = struct.unpack_from("<IB", info, unit_offset + 6)
            abbrev_at = relocated(unit_offset + 6) or abbrev_at
            self.top_offset = unit_offset + 11
        else:
            raise DwarfFormatError(f"DWARF version {version} is not supported")
        self.str_offsets_base = 8
        self.abbrevs = self._read_abbrevs(abbrev, abbrev_at)
        top = self.die(self.top_offset)
        base = top.attrs.get("DW_AT_str_offsets_base")
        if isinstance(base, int):
            self.str_offsets_base = base

    def _read_abbrevs(self, data: bytes, pos: int) -> dict[int, _Abbrev]:
        out = {}
        while True:
            code, pos = _uleb(data, pos)
            if code == 0:
                return out
            tag, pos = _uleb(data, pos)
            has_children = data[pos] != 0
            pos += 1
            specs, steps, run = [], [], 0
            while True:
                at, pos = _uleb(data, pos)
                form, pos = _uleb(data, pos)
                if at == 0 and form == 0:
                    break
                implicit = 0
                if form == F["implicit_const"]:
                    implicit, pos = _sleb(data, pos)
                size = self._fixed_size(form)
                specs.append((_ATS.get(at, f"DW_AT_{at:#x}"), self._how(form), size or 0, form, implicit))
                if size is None:
                    steps.append((run, form, implicit))
                    run = 0
                else:
                    run += size
            tag_name = _TAGS.get(tag, f"DW_TAG_{tag:#x}")
            out[code] = _Abbrev(tag_name, has_children, tuple(specs), tuple(steps), run)

    @staticmethod
    def _how(form: int) -> int:
        if form == F["strp"]:
            return _STRP
        if form == F["flag_present"]:
            return _FLAG
        if form in _RELOCATED:
            return _RELOC_INT
        if form in _CU_REFS and form != F["ref_udata"]:
            return _REF
        if form in _FIXED and form not in _CU_REFS and form != F["implicit_const"] and form < F["strx1"]:
            return _INT if form != F["data16"] else _OTHER
        return _OTHER

    def _fixed_size(self, form: int) -> int | None:
        if form in _FIXED:
            return _FIXED[form]
        if form in _OFFSET_SIZED:
            return 4
        if form == F["addr"]:
            return self.addr_size
        return None

    # -- decoding ------------------------------------------------------------------
    def die(self, offset: int) -> Die:
        """The DIE at `offset` (a .debug_info offset, as references hold)."""
        code, pos = _uleb(self.info, offset)
        ab = self.abbrevs.get(code)
        if ab is None:
            raise DwarfFormatError(f"DIE at {offset:#x} has unknown abbreviation {code}")
        info, attrs = self.info, {}
        for name, how, size, form, implicit in ab.specs:
            if how == _INT:
                attrs[name] = int.from_bytes(info[pos : pos + size], "little")
                pos += size
            elif how == _REF:
                attrs[name] = self.unit + int.from_bytes(info[pos : pos + size], "little")
                pos += size
            elif how == _STRP:
                at = self.relocated(pos)
                attrs[name] = _cstring(
                    self.strs, at if at is not None else struct.unpack_from("<I", info, pos)[0]
                )
                pos += 4
            elif how == _FLAG:
                attrs[name] = True
            elif how == _RELOC_INT:
                at = self.relocated(pos)
                attrs[name] = at if at is not None else int.from_bytes(info[pos : pos + size], "little")
                pos += size
            else:
                attrs[name], pos = self._value(form, pos, implicit)
        return Die(offset, ab.tag, attrs, ab.has_children, pos)

    def _value(self, form: int, pos: int, implicit: int) -> tuple[object, int]:
        data = self.info
        if form in (F["strp"], F["line_strp"]):
            at = self.relocated(pos)
            at = at if at is not None else struct.unpack_from("<I", data, pos)[0]
            return _cstring(self.strs if form == F["strp"] else self.line_strs, at), pos + 4
        if form == F["string"]:
            end = data.index(b"\0", pos)
            return data[pos:end].decode(errors="replace"), end + 1
        if form in (F["strx"], F["strx1"], F["strx2"], F["strx3"], F["strx4"]):
            index, pos = self._int(form, pos)
            at = struct.unpack_from("<I", self.str_offsets, self.str_offsets_base + 4 * index)[0]
            return _cstring(self.strs, at), pos
        if form == F["flag_present"]:
            return True, pos
        if form == F["implicit_const"]:
            return implicit, pos
        if form == F["sdata"]:
            return _sleb(data, pos)
        if form in (F["exprloc"], F["block"]):
            size, pos = _uleb(data, pos)
            return data[pos : pos + size], pos + size
        if form in (F["block1"], F["block2"], F["block4"]):
            width = {F["block1"]: 1, F["block2"]: 2, F["block4"]: 4}[form]
            size = int.from_bytes(data[pos : pos + width], "little")
            return data[pos + width : pos + width + size], pos + width + size
        if form == F["data16"]:
            return data[pos : pos + 16], pos + 16
        if form == F["indirect"]:
            real, pos = _uleb(data, pos)
            return self._value(real, pos, implicit)
        value, end = self._int(form, pos)
        if form in _RELOCATED:
            at = self.relocated(pos)
            value = at if at is not None else value
        return (self.unit + value if form in _CU_REFS else value), end

    def _int(self, form: int, pos: int) -> tuple[int, int]:
        if form in _ULEB_SIZED:
            return _uleb(self.info, pos)
        size = self._fixed_size(form)
        if size is None:
            raise DwarfFormatError(f"unsupported DWARF form {form:#x}")
        return int.from_bytes(self.info[pos : pos + size], "little"), pos + size

    # -- walking -------------------------------------------------------------------
    def top(self) -> Die:
        return self.die(self.top_offset)

    def children(self, die: Die, tags: frozenset[str] | None = None) -> Iterator[Die]:
        """`die`'s children, each decoded; their own subtrees are stepped over. With `tags`,
        only the children of those tags: the others are stepped over undecoded (most of a
        unit's top-level entries are pointer and tuple types a walk has no use for)."""
        if not die.has_children:
            return
        pos = die.end
        info = self.info
        while info[pos] != 0:
            if tags is not None:
                code, _ = _uleb(info, pos)
                ab = self.abbrevs.get(code)
                if ab is not None and ab.tag not in tags:
                    pos = self._skip_children(pos, 0)
                    continue
            child = self.die(pos)
            yield child
            pos = self._skip_children(child.end) if child.has_children else child.end

    def _skip_children(self, pos: int, depth: int = 1) -> int:
        """The offset after the children that start at `pos` (and their end marker); with
        `depth` 0, after the one entry at `pos` and its children."""
        data, abbrevs = self.info, self.abbrevs
        while True:
            code = data[pos]
            if code < 0x80:
                pos += 1
            else:
                code, pos = _uleb(data, pos)
            if code == 0:
                depth -= 1
                if depth <= 0:
                    return pos
                continue
            ab = abbrevs[code]
            for gap, form, implicit in ab.steps:
                pos += gap
                if form in _LEB:
                    while data[pos] & 0x80:
                        pos += 1
                    pos += 1
                else:
                    _, pos = self._value(form, pos, implicit)
            pos += ab.tail
            if ab.has_children:
                depth += 1
            elif depth == 0:
                return pos


class UnitDies:
    """The DIEs of every compile unit of one object: a reference may cross units
    (DW_FORM_ref_addr, which rustc emits at opt-level >= 1), so each offset is decoded
    by the reader of the unit that holds it."""

    def __init__(self, readers: list[DieReader]) -> None:
        self.readers = readers
        self.starts = [r.unit for r in readers]

    def reader(self, offset: int) -> DieReader:
        return self.readers[max(0, bisect_right(self.starts, offset) - 1)]

    def die(self, offset: int) -> Die:
        return self.reader(offset).die(offset)

    def children(self, die: Die) -> Iterator[Die]:
        return self.reader(die.offset).children(die)


def line_table_files(line: bytes, offset: int) -> tuple[list[str], list[tuple[str, int]]] | None:
    """(include directories, (file name, directory index) pairs) from the header of the
    DWARF 2-4 line program at `offset`; None for DWARF 5, whose header is self-describing."""
    version = struct.unpack_from("<H", line, offset + 4)[0]
    if struct.unpack_from("<I", line, offset)[0] >= 0xFFFFFFF0 or not 2 <= version <= 4:
        return None
    pos = offset + 10 + (5 if version >= 4 else 4)  # up to and including line_range
    opcode_base = line[pos]
    pos += opcode_base  # opcode_base itself, then the standard opcodes' lengths
    dirs = []
    while line[pos]:
        end = line.index(b"\0", pos)
        dirs.append(line[pos:end].decode(errors="replace"))
        pos = end + 1
    pos += 1
    files = []
    while line[pos]:
        end = line.index(b"\0", pos)
        name = line[pos:end].decode(errors="replace")
        d, pos = _uleb(line, end + 1)
        _mtime, pos = _uleb(line, pos)
        _length, pos = _uleb(line, pos)
        files.append((name, d))
    return dirs, files
