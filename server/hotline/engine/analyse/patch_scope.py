"""Which of the edited crates' codegen units a patch must carry.

Relinking every codegen unit of the edited crates made each patch as large as the crate
(about 250 objects for an axum app). A patch needs only the code whose behaviour
changed: the functions whose code changed or that are new, and everything that refers
to those, directly or through other such code or data (a caller, a vtable), because its
old copy still calls or points at the old code. rustc gives every function and constant
a section of its own, so this is followed section by section; a codegen unit holding
any such section is linked whole.

With entry jumps (`entry_jumps.py`) the walk also stops at a function whose every old copy
is redirected to its new copy: old callers and pointers already reach the new code, so a
patch links only the units whose code changed. A function that cannot be redirected is
reached the old way, through relinked callers.

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
from dataclasses import dataclass
from weakref import WeakKeyDictionary

from hotline.engine.link.elf_objects import STT_FUNC, STT_SECTION, ObjectFile


def is_safe_point(symbol: str) -> bool:
    """An instance of `hotline::call` or `<F as hotline::HotFn<R>>::hot_call` (legacy or v0 mangling)."""
    return "7hotline4call" in symbol or ("HotFn" in symbol and "8hot_call" in symbol)


class _SectionGraph:
    """Who refers to what inside one object, computed once per object (objects of
    unchanged codegen units are shared between builds, so a save touches only the
    objects it reaches)."""

    def __init__(self, obj: ObjectFile) -> None:
        self.local_users: dict[int, list[int]] = defaultdict(list)  # section -> sections using it
        self.import_users: dict[str, list[int]] = defaultdict(list)  # undefined name -> sections
        self.defined: dict[str, list[int]] = defaultdict(list)  # named symbol -> its sections
        self.names: dict[int, list[str]] = defaultdict(list)  # section -> global names in it
        self.functions: dict[int, list[str]] = defaultdict(list)  # section -> functions in it
        self.safe_points: set[int] = set()
        for si, sec in obj.sections.items():
            if not sec.alloc or sec.name == ".eh_frame":  # unwind info points at every function
                continue
            for r in sec.relocs:
                sym = obj.symbols[r.sym]
                if not sym.defined:
                    if sym.name:
                        self.import_users[sym.name].append(si)
                elif sym.shndx in obj.sections and obj.sections[sym.shndx].alloc:
                    self.local_users[sym.shndx].append(si)
        for sym in obj.symbols:
            if sym.name and sym.type != STT_SECTION and sym.shndx in obj.sections:
                self.defined[sym.name].append(sym.shndx)
                if sym.bind:
                    self.names[sym.shndx].append(sym.name)
                if sym.type == STT_FUNC:
                    self.functions[sym.shndx].append(sym.name)
                if is_safe_point(sym.name):
                    self.safe_points.add(sym.shndx)


_graphs: WeakKeyDictionary[ObjectFile, _SectionGraph] = WeakKeyDictionary()


def _graph(obj: ObjectFile) -> _SectionGraph:
    graph = _graphs.get(obj)
    if graph is None:
        graph = _graphs[obj] = _SectionGraph(obj)
    return graph


def prepare(objects: list[ObjectFile]) -> None:
    """Reads the objects' reference graphs now (after a full build), not during the first save."""
    for obj in objects:
        _graph(obj)


@dataclass
class Scope:
    objects: list[ObjectFile]  # what the patch links, in the order given
    redirect: list[str]  # functions whose old entries should jump to their new copies


def patch_scope(
    new: list[ObjectFile],
    changed: Iterable[str],
    unresolvable: Callable[[str], bool],
    redirectable: Callable[[str], bool] | None = None,
) -> Scope:
    """The objects of `new` a patch must link, and the functions to redirect.

    `changed` names the functions whose code changed or that are new; `unresolvable(name)`
    says a symbol cannot be reached by name in the running process; `redirectable(name)`,
    given when entry jumps are on, says every old copy of a function can take one.
    """
    graphs = [(obj, _graph(obj)) for obj in new]
    reached: set[tuple[int, int]] = set()  # (index in `new`, section)
    redirect: dict[str, None] = {}
    pending = [
        (i, si) for name in changed for i, (_, g) in enumerate(graphs) for si in g.defined.get(name, ())
    ]
    while pending:
        node = pending.pop()
        if node in reached:
            continue
        reached.add(node)
        i, si = node
        g = graphs[i][1]
        if si in g.safe_points:
            continue  # its callers find the new copy in the jump table
        if redirectable is not None and g.functions.get(si):
            redirect.update(dict.fromkeys(g.functions[si]))
            if all(redirectable(f) for f in g.functions[si]):
                continue  # its old entries jump to the new copy: callers need not move
        pending += [(i, user) for user in g.local_users.get(si, ())]
        for name in g.names.get(si, ()):
            for j, (_, other) in enumerate(graphs):
                pending += [(j, user) for user in other.import_users.get(name, ())]

    scope = {i for i, _ in reached}
    # Callees that cannot be reached by name ride along unchanged (and pull in no users).
    waiting = list(scope)
    while waiting:
        for name in graphs[waiting.pop()][1].import_users:
            if not unresolvable(name):
                continue
            for j, (_, other) in enumerate(graphs):
                if j not in scope and name in other.defined:
                    scope.add(j)
                    waiting.append(j)
    return Scope([obj for i, (obj, _) in enumerate(graphs) if i in scope], list(redirect))
