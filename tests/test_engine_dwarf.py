"""`dwarf_reader` and `type_layouts` on real rustc DWARF 4 and 5
(tests/engine_fixtures/dwarf.rs, `-C dwarf-version`, stable since rustc 1.88): every DIE
the fast reader decodes, stepping over subtrees, matches pyelftools; struct, enum, union
and C-like enum layouts; function locations; the `signatures` map; and the
DwarfFormatError branches (64-bit DWARF is refused; the session turns it into HL1099)."""

from __future__ import annotations

import dataclasses
import struct

import pytest
from elftools.elf.elffile import ELFFile
from engine_fixtures import HERE, rustc
from hotline.engine.analyse.dwarf_reader import DieReader, DwarfFormatError, line_table_files
from hotline.engine.analyse.type_layouts import Relocations, crate_layouts, debug_sections, unit_reader
from hotline.engine.link.elf_objects import ObjectFile, read_object

SOURCE = HERE / "dwarf.rs"


@pytest.fixture(scope="session")
def dwarf_objects(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dwarf")
    out = {}
    for version in (4, 5):
        (path,) = rustc(tmp / str(version), "dwarf.rs", "-Ccodegen-units=1", f"-Cdwarf-version={version}")
        out[version] = read_object(path)
    return out


def line_of(needle: str) -> int:
    return next(i for i, s in enumerate(SOURCE.read_text().splitlines(), 1) if needle in s)


def reader_for(obj: ObjectFile, unit: int = 0) -> DieReader:
    sections, info = debug_sections(obj)
    return unit_reader(sections, unit, Relocations(obj, info))


@pytest.mark.parametrize("version", [4, 5])
def test_every_die_matches_pyelftools(dwarf_objects, version):
    obj = dwarf_objects[version]
    with open(obj.path, "rb") as f:
        (cu,) = ELFFile(f).get_dwarf_info().iter_CUs()
        expected = [
            (d.offset, d.tag, {k: a.value for k, a in d.attributes.items()}) for d in cu.iter_DIEs() if d.tag
        ]
        forms = {a.form for d in cu.iter_DIEs() for a in d.attributes.values()}
    if version == 5:  # the DWARF 5 forms the reader decodes itself
        assert {"DW_FORM_strx1", "DW_FORM_addrx", "DW_FORM_implicit_const"} <= forms
    reader = reader_for(obj)
    assert reader.version == version

    got = []

    def walk(die):
        got.append(die)
        for child in reader.children(die):  # each child's subtree is stepped over here ...
            walk(child)  # ... and decoded on its own

    walk(reader.top())
    assert [(d.offset, d.tag) for d in got] == [(o, t) for o, t, _ in expected]
    for die, (_, _, attrs) in zip(got, expected, strict=True):
        assert set(die.attrs) == set(attrs), die
        for key, value in attrs.items():
            if isinstance(value, bytes) and key in ("DW_AT_name", "DW_AT_linkage_name", "DW_AT_producer"):
                assert die.attrs[key] == value.decode(), (die, key)
            elif key in (
                "DW_AT_byte_size",
                "DW_AT_alignment",
                "DW_AT_data_member_location",
                "DW_AT_decl_line",
            ):
                assert die.attrs[key] == value, (die, key)


@pytest.mark.parametrize("version", [4, 5])
def test_layouts_of_structs_enums_and_unions(dwarf_objects, version):
    types = crate_layouts([dwarf_objects[version]], "dwarf").types
    player = types["dwarf::Player"]
    assert (player.kind, player.size, player.align) == ("struct", 40, 8)
    assert sorted(player.fields) == [("hp", 32, "u32"), ("name", 0, "String"), ("pos", 24, "(f32, f32)")]
    shape = types["dwarf::Shape"]
    assert (shape.kind, shape.size, shape.align) == ("enum", 12, 4)
    assert shape.fields == (
        ("<discriminant>", 0, "u32"),
        ("variant Circle = 0", 0, "Circle"),
        ("variant Rect = 1", 0, "Rect"),
        ("variant Empty = 2", 0, "Empty"),
    )
    assert types["dwarf::Shape::Rect"].fields == (("w", 4, "f32"), ("h", 8, "f32"))
    level = types["dwarf::Level"]  # a C-like enum: enumerators and their values
    assert (level.kind, level.size, level.fields) == (
        "enum",
        1,
        (("Low", 1, "enumerator"), ("High", 7, "enumerator")),
    )
    bits = types["dwarf::Bits"]
    assert (bits.kind, bits.size, bits.fields) == ("union", 4, (("i", 0, "u32"), ("f", 0, "f32")))


def by_short_name(mapping: dict[str, object]) -> dict[str, object]:
    """`area` from `_ZN5dwarf4area17h…E`, `Player::heal` from `_ZN5dwarf6Player4heal17h…E`."""
    out = {}
    for symbol, value in mapping.items():
        if symbol.startswith("_ZN5dwarf"):
            rest, parts = symbol[len("_ZN5dwarf") :].split("17h", 1)[0], []
            while rest:
                digits = len(rest) - len(rest.lstrip("0123456789"))
                n = int(rest[:digits])
                parts.append(rest[digits : digits + n])
                rest = rest[digits + n :]
            out["::".join(parts)] = value
    return out


@pytest.mark.parametrize("version", [4, 5])
def test_function_locations_and_signatures(dwarf_objects, version):
    layouts = crate_layouts([dwarf_objects[version]], "dwarf")
    functions = by_short_name(layouts.functions)
    for fn in ("area", "make", "nothing", "level", "bits"):
        assert functions[fn] == (str(SOURCE), line_of(f"pub fn {fn}(")), fn
    signatures = by_short_name(layouts.signatures)
    assert signatures["area"] == "(&dwarf::Shape) -> f32"
    assert signatures["make"] == "(u32, String) -> Player"
    assert signatures["nothing"] == "(u8, u64) -> ()"
    assert signatures["level"] == "(Level) -> u8"
    assert signatures["bits"] == "(Bits) -> u32"


@pytest.mark.parametrize("version", [4, 5])
def test_an_inherent_methods_location_and_signature_are_read(dwarf_objects, version):
    """KNOWN ENGINE BUG (fails on purpose): rustc describes `impl Player { fn heal }` with a
    declaration DIE inside `Player` that carries DW_AT_linkage_name, and a concrete DIE
    (DW_AT_low_pc) holding only DW_AT_specification. `_UnitWalk.record_function` looks for
    the linkage name on the concrete DIE only, so methods get no location (no `patched in`
    lens) and no signature: under v0 mangling a method's signature change is not seen
    (HL1007) and its old entry would still get a jump."""
    layouts = crate_layouts([dwarf_objects[version]], "dwarf")
    assert by_short_name(layouts.functions).get("Player::heal") == (str(SOURCE), line_of("pub fn heal("))
    assert by_short_name(layouts.signatures).get("Player::heal") == "(&mut dwarf::Player, u32) -> u32"


def with_debug_info(obj: ObjectFile, data: bytes) -> ObjectFile:
    sections = {
        i: dataclasses.replace(s, data=data, relocs=[]) if s.name == ".debug_info" else s
        for i, s in obj.sections.items()
    }
    return ObjectFile(obj.path, sections, obj.symbols)


def test_64_bit_dwarf_is_refused(dwarf_objects):
    obj = dwarf_objects[4]
    info = next(s for s in obj.sections.values() if s.name == ".debug_info")
    # The same unit in the 64-bit format: 0xffffffff, then an 8-byte length.
    (length,) = struct.unpack_from("<I", info.data)
    wide = b"\xff\xff\xff\xff" + struct.pack("<Q", length + 4) + info.data[4:]
    with pytest.raises(DwarfFormatError, match="64-bit DWARF is not supported"):
        crate_layouts([with_debug_info(obj, wide)], "dwarf")
    with pytest.raises(DwarfFormatError, match="64-bit DWARF is not supported"):
        DieReader(wide, b"", b"", b"", b"", 0)
    # A 64-bit line program header is left alone rather than misread.
    assert line_table_files(b"\xff\xff\xff\xff" + struct.pack("<QH", 100, 4) + bytes(100), 0) is None


def test_other_malformed_units_are_refused(dwarf_objects):
    info = next(s for s in dwarf_objects[4].sections.values() if s.name == ".debug_info").data
    old_version = info[:4] + struct.pack("<H", 1) + info[6:]
    with pytest.raises(DwarfFormatError, match="DWARF version 1 is not supported"):
        crate_layouts([with_debug_info(dwarf_objects[4], old_version)], "dwarf")
    # A top entry whose abbreviation code the abbreviation table does not define.
    unknown = info[:11] + b"\x7f" + info[12:]
    with pytest.raises(DwarfFormatError, match="unknown abbreviation 127"):
        crate_layouts([with_debug_info(dwarf_objects[4], unknown)], "dwarf")


def test_a_definition_whose_declaration_is_in_another_unit_of_the_object(tmp_path):
    """rustc at opt-level >= 1 leaves several compile units in one object (functions LLVM
    imported from other codegen units bring theirs), and a function defined in one may be
    declared in another (DW_AT_specification as DW_FORM_ref_addr). The declaration is read
    by its own unit's reader: its references are relative to that unit and its
    DW_AT_decl_file indexes that unit's line table. Read with the defining unit's, the
    tokio app of the receipt corpus (issue 25) failed its fat build with "DIE ... has unknown
    abbreviation 0", and here `Cell::new` was placed in alloc's boxed.rs."""
    objects = [read_object(p) for p in rustc(tmp_path, "cross_unit.rs", "-Copt-level=2", "-Ccodegen-units=2")]
    crossing = []
    for obj in objects:
        sections, info = debug_sections(obj)
        relocations, unit = Relocations(obj, info), 0
        while unit < len(info.data):
            reader = unit_reader(sections, unit, relocations)
            stack = [reader.top()]
            while stack:
                die = stack.pop()
                spec = die.attrs.get("DW_AT_specification")
                if isinstance(spec, int) and not unit <= spec < reader.next_unit:
                    crossing.append(obj)
                stack += reader.children(die)
            unit = reader.next_unit
    assert crossing, "the fixture no longer has a definition declared in another unit"
    source = HERE / "cross_unit.rs"
    new_line = next(i for i, s in enumerate(source.read_text().splitlines(), 1) if "pub fn new(" in s)
    for obj in set(crossing):
        functions = crate_layouts([obj], "cross_unit").functions
        placed = {f: where for f, where in functions.items() if "Cell$LT$T$C$S$GT$3new" in f}
        assert placed and set(placed.values()) == {(str(source), new_line)}, functions
        elsewhere = {f: where for f, where in functions.items() if "alloc_impl" in f}
        assert all(not path.endswith("cross_unit.rs") for path, _ in elsewhere.values()), elsewhere


@pytest.mark.parametrize("version", [4, 5])
def test_a_function_is_found_whatever_its_candidate_entries_decode_to(dwarf_objects, version, monkeypatch):
    """`FunctionEntries.find` decodes a few offsets before each DW_AT_low_pc relocation to the
    function as maybe its entry; an offset inside another entry decodes to garbage, such as
    a DW_FORM_strp past .debug_str (ValueError from the string's search: a tokio app of the
    receipt corpus, issue 25, failed its patch with "subsection not found"). Every offset of
    the unit is tried here before the right one: each wrong one is skipped."""
    from hotline.engine.analyse import function_abi

    obj = dwarf_objects[version]
    expected = function_abi.AbiIndex(obj)
    symbol = next(s for s in expected.functions._walk() if s.startswith("_ZN5dwarf4make"))
    right = expected.functions.find(symbol)
    assert right is not None
    size = len(next(s for s in obj.sections.values() if s.name == ".debug_info").data)
    everywhere = list(range(right[0].offset)) + [right[0].offset]
    monkeypatch.setattr(function_abi.FunctionEntries, "_entry_candidates", lambda self, s: everywhere)
    index = function_abi.AbiIndex(obj)
    found = index.functions.find(symbol)
    assert found is not None and found[0].offset == right[0].offset < size
    assert index.abi(symbol) == expected.abi(symbol)
