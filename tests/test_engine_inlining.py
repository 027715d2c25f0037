"""What receipts read of inlining (issue 25): `inlined_functions` from DWARF, and
`referenced_functions` from relocations, on a real object rustc built at opt-level 1
(tests/engine_fixtures/inlining.rs)."""

from __future__ import annotations

import pytest
from engine_fixtures import rustc
from hotline.engine.analyse.demangle import demangle
from hotline.engine.analyse.function_abi import AbiIndex
from hotline.engine.analyse.inlined_functions import inlined_functions
from hotline.engine.analyse.references import referenced_functions
from hotline.engine.link.elf_objects import ObjectFile, read_object


@pytest.fixture(scope="module")
def obj(tmp_path_factory) -> ObjectFile:
    (path,) = rustc(tmp_path_factory.mktemp("inlining"), "inlining.rs", "-Copt-level=1", "-Ccodegen-units=1")
    return read_object(path)


def symbol(obj: ObjectFile, name: str) -> str:
    (found,) = {s.name for s in obj.symbols if s.name and demangle(s.name) == f"inlining::{name}"}
    return found


def test_the_functions_inlined_into_a_copy_are_read_from_its_dwarf(obj):
    inlined = {demangle(s) for s in inlined_functions(AbiIndex(obj).functions, symbol(obj, "step"))}
    assert {"inlining::bump", "inlining::step::{{closure}}", "core::option::Option<T>::map"} <= inlined
    assert "inlining::speed" not in inlined  # folded to a constant: LLVM kept no record of it


def test_a_function_inlined_everywhere_is_referenced_by_nothing_and_a_called_one_is(obj):
    referenced = {demangle(s) for s in referenced_functions(obj)}
    assert "inlining::called" in referenced and "inlining::step" in referenced
    assert "inlining::speed" not in referenced and "inlining::bump" not in referenced
