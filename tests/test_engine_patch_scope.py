"""`patch_scope.patch_scope` walks on real codegen units (tests/engine_fixtures/scope.rs,
one module per unit): which units a patch links, and which functions it redirects
(ARCHITECTURE.md, "Patch scope and entry jumps")."""

from __future__ import annotations

import pytest
from engine_fixtures import defining, rustc, symbol
from hotline.engine.analyse.patch_scope import is_safe_point, patch_scope
from hotline.engine.link.elf_objects import STT_FUNC, read_object


@pytest.fixture(scope="session")
def units(tmp_path_factory):
    paths = rustc(tmp_path_factory.mktemp("scope"), "scope.rs", "-Ccodegen-units=64", crate_type="bin")
    objects = [read_object(p) for p in paths]
    return objects


def unit(objects, needle):
    return defining(objects, needle)


def name(objects, needle):
    return symbol(unit(objects, needle), needle, STT_FUNC).name


def never(_name: str) -> bool:
    return False


def scope_of(objects, changed, redirectable=None, unresolvable=never):
    s = patch_scope(objects, [name(objects, c) for c in changed], unresolvable, redirectable)
    return {id(o) for o in s.objects}, s.redirect


def has(scope, objects, needle) -> bool:
    return id(unit(objects, needle)) in scope


def test_the_fixture_puts_each_module_in_its_own_unit(units):
    modules = [
        "4leaf4word",
        "6middle6phrase",
        "5upper4show",
        "7factory4make",
        "shape_impl..Square",
        "6looper",
    ]
    modules += ["10outer_safe3run", "11outer_plain3run", "7hotline4call", "5plain4call", "5scope4main"]
    assert len({id(unit(units, m)) for m in modules}) == len(modules)


def test_without_entry_jumps_callers_in_other_units_are_pulled_in(units):
    scope, redirect = scope_of(units, ["4leaf4word"])
    assert redirect == []
    for caller in ("4leaf4word", "6middle6phrase", "5upper4show", "5scope4main"):  # the call chain
        assert has(scope, units, caller), caller
    # Through a closure passed to a plain generic function: its callers too.
    assert has(scope, units, "5plain4call") and has(scope, units, "11outer_plain3run")
    # Units that do not reach the changed function stay out.
    assert not has(scope, units, "7factory4make") and not has(scope, units, "shape_impl..Square")


def test_the_walk_stops_at_a_safe_point(units):
    scope, _ = scope_of(units, ["4leaf4word"])
    assert is_safe_point(name(units, "7hotline4call"))
    assert has(scope, units, "7hotline4call")  # reached: it calls the closure that calls word
    # ... but not walked past: the code around the safe point finds the new closure itself.
    assert not has(scope, units, "10outer_safe3run")
    assert has(scope, units, "11outer_plain3run")  # the same shape without a safe point


def test_a_redirectable_function_keeps_its_callers_out(units):
    scope, redirect = scope_of(units, ["4leaf4word"], redirectable=lambda f: True)
    assert scope == {id(unit(units, "4leaf4word"))}
    assert redirect == [name(units, "4leaf4word")]


def test_a_function_that_cannot_take_an_entry_jump_pulls_in_its_callers_up_to_redirectable_ones(units):
    word = name(units, "4leaf4word")
    scope, redirect = scope_of(units, ["4leaf4word"], redirectable=lambda f: f != word)
    assert has(scope, units, "6middle6phrase")  # calls word: relinked
    assert not has(scope, units, "5upper4show")  # calls phrase, which takes an entry jump
    assert not has(scope, units, "11outer_plain3run")
    assert word in redirect and name(units, "6middle6phrase") in redirect
    assert name(units, "5upper4show") not in redirect


def test_a_vtable_user_is_pulled_in(units):
    method = "shape_impl..Square"
    scope, _ = scope_of(units, [method])
    # The vtable in factory's unit points at the method: factory::make (which hands the
    # vtable out) and its callers are relinked, though none of them calls the method.
    vtable_unit = unit(units, "7factory4make")
    assert any(
        not s.defined and symbol(unit(units, method), method, STT_FUNC).name == s.name
        for s in vtable_unit.symbols
    )
    assert has(scope, units, "7factory4make") and has(scope, units, "5scope4main")
    assert not has(scope, units, "4leaf4word")
    # With entry jumps the old vtable entry reaches the new method through its old entry.
    scope, _ = scope_of(units, [method], redirectable=lambda f: True)
    assert scope == {id(unit(units, method))}


def test_an_unresolvable_callee_rides_along_without_its_users(units):
    fmt = "5alloc3fmt6format17h"
    fmt_name = name(units, fmt)
    scope, _ = scope_of(units, ["6middle6phrase"], redirectable=lambda f: True)
    assert scope == {id(unit(units, "6middle6phrase"))}
    scope, _ = scope_of(
        units, ["6middle6phrase"], redirectable=lambda f: True, unresolvable=lambda n: n == fmt_name
    )
    assert scope == {id(unit(units, "6middle6phrase")), id(unit(units, fmt))}
