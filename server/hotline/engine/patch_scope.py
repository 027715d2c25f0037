"""Which of the edited crates' codegen units a patch must carry.

Relinking every codegen unit of the edited crates made each patch as large as the crate
(about 250 objects for an axum app). A patch needs only the code whose behaviour
changed: the functions whose code changed or that are new, and everything that refers
to those, directly or through other such code or data (a caller, a vtable), because its
old copy still calls or points at the old code. rustc gives every function and constant
a section of its own, so this is followed section by section; a codegen unit holding
any such section is linked whole.

The walk stops at a safe point: once a patch is applied, `hotline::call` enters its
closure through the closure's `HotFn::hot_call` instance, which it looks up in the jump
table on every call, so the old code around a safe point already reaches the new closure. All other code
keeps running where it is, and new code reaches it at its newest address, in the
executable or in an earlier patch.

A symbol that new code needs but the running process holds more than once under the
same name (a hidden generic instance in two crates, say) cannot be resolved by name;
the unit defining it is linked too, so the reference stays inside the patch.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable

from hotline.engine.elf_objects import STB_LOCAL, STT_SECTION, ObjectFile

Node = tuple[int, int]  # (id of the object, section index)


def is_safe_point(symbol: str) -> bool:
    """An instance of `hotline::call` or `<F as hotline::HotFn<R>>::hot_call` (legacy or v0 mangling)."""
    return "7hotline4call" in symbol or ("HotFn" in symbol and "8hot_call" in symbol)


def patch_scope(
    new: list[ObjectFile], changed: Iterable[str], unresolvable: Callable[[str], bool]
) -> list[ObjectFile]:
    """The objects of `new` a patch must link, in `new`'s order.

    `changed` names the functions whose code changed or that are new; `unresolvable(name)`
    says a symbol cannot be reached by name in the running process.
    """
    by_id = {id(o): o for o in new}
    users: dict[Node | str, list[Node]] = defaultdict(list)
    defined_in: dict[str, list[Node]] = defaultdict(list)  # every named symbol, local or global
    global_names: dict[Node, list[str]] = defaultdict(list)
    safe_points: set[Node] = set()
    for obj in new:
        for si, targets in obj.references.items():
            for t in targets:
                users[(id(obj), t) if isinstance(t, int) else t].append((id(obj), si))
        for sym in obj.symbols:
            if sym.name and sym.type != STT_SECTION and sym.shndx in obj.sections:
                defined_in[sym.name].append((id(obj), sym.shndx))
                if is_safe_point(sym.name):
                    safe_points.add((id(obj), sym.shndx))
                if sym.bind != STB_LOCAL:
                    global_names[(id(obj), sym.shndx)].append(sym.name)

    reached: set[Node] = set()
    pending = [node for name in changed for node in defined_in.get(name, ())]
    while pending:
        node = pending.pop()
        if node in reached:
            continue
        reached.add(node)
        if node in safe_points:
            continue  # its callers find the new copy in the jump table
        pending += users.get(node, ())
        for name in global_names.get(node, ()):
            pending += users.get(name, ())

    scope = {oi for oi, _ in reached}
    # Callees that cannot be reached by name ride along unchanged (and pull in no users).
    pending_objects = list(scope)
    while pending_objects:
        obj = by_id[pending_objects.pop()]
        for targets in obj.references.values():
            for name in targets:
                if not isinstance(name, str) or not unresolvable(name):
                    continue
                for oi, _ in defined_in.get(name, ()):
                    if oi not in scope:
                        scope.add(oi)
                        pending_objects.append(oi)
    return [o for o in new if id(o) in scope]
