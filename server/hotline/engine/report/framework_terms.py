"""A patch's facts in a framework's terms: Bevy's systems, schedules, observers, components.

Hotline sees functions; a Bevy user thinks in systems. Bevy registers a system once, at
start-up (`App::add_systems` in `main` or a plugin's `build`), as a
`FunctionSystem<Marker, In, Out, F>` whose `F` is the user's fn item and whose `Marker`
spells the fn's parameter types. So what an edit means to Bevy is read from the build, not
from the sources:

- a *system* is a function of the app's sources reached from an instance of
  `<FunctionSystem<…> as System>::run_unsafe` through its call chain (`SystemParamFunction::
  run` → `call_inner` → `FnMut::call_mut` → the fn), read from the objects' relocations; an
  *observer* the same, reached from an `App::add_observer` instance;
- its *schedule*, where knowable: the label type of the `App::add_systems` instance whose
  calls reach its `FunctionSystem` (the instance's second parameter in the debug info,
  `(&mut App, Startup, fn(Commands))`). A system passed through `.after(…)` or `.in_set(…)`
  first is configured by another call, and its schedule is left unsaid;
- a *component*: a type with a `<T as bevy_ecs::component::Component>` impl in the build.

`BevyTerms.of` is None for an app without Bevy, and nothing is reworded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from hotline.engine.analyse.demangle import demangle
from hotline.engine.analyse.object_cache import Build
from hotline.engine.analyse.object_diff import FunctionChanges
from hotline.engine.analyse.rude_edits import RudeEdit
from hotline.engine.build.workspace import namespace
from hotline.engine.link.elf_objects import STT_FUNC, STT_SECTION, ObjectFile
from hotline.engine.report import patch_warnings

_RUN_UNSAFE = "<bevy_ecs::system::function_system::FunctionSystem<"
_ADD_SYSTEMS = "bevy_app::app::App::add_systems"
_ADD_OBSERVER = "bevy_app::app::App::add_observer"
_COMPONENT = re.compile(r"^<(.+) as bevy_ecs::component::Component>::")
_STARTUP = ("PreStartup", "Startup", "PostStartup")
#: The rule of a function that already ran and will not run again (receipts.py).
ALREADY_RAN = "HL1013"


def _calls_of(obj: ObjectFile) -> dict[str, frozenset[str]]:
    """Each function defined in `obj` -> the named symbols its code refers to, through the
    anonymous constants it refers to (a vtable names the methods of its type)."""

    def named(index: int, seen: set[int]) -> set[str]:
        out: set[str] = set()
        for r in obj.sections[index].relocs:
            s = obj.symbols[r.sym]
            if s.type == STT_SECTION or not s.name or s.name.startswith((".L", "anon.", "alloc_")):
                if s.shndx in obj.sections and s.shndx not in seen and len(seen) < 8:
                    seen.add(s.shndx)
                    out |= named(s.shndx, seen)
            else:
                out.add(s.name)
        return out

    return {
        s.name: frozenset(named(s.shndx, {s.shndx}))
        for s in obj.symbols
        if s.type == STT_FUNC and s.shndx in obj.sections and s.name
    }


def _uses_bevy(obj: ObjectFile) -> dict[str, bool]:
    return {"bevy": True} if any("FunctionSystem" in s.name for s in obj.symbols) else {}


@dataclass(frozen=True)
class System:
    """A function the app registered with Bevy."""

    symbol: str
    kind: str  # "system" or "observer"
    schedule: str | None  # the schedule label's type name, when knowable
    signature: str | None  # its parameters, from the debug info

    @property
    def name(self) -> str:
        return demangle(self.symbol)

    def described(self) -> str:
        if self.kind == "observer":
            return f"the Bevy observer {self.name}"
        where = f" of the {self.schedule} schedule" if self.schedule else ""
        return f"the Bevy system {self.name}{where}"


class BevyTerms:
    """The systems, observers and components of one build of the app (per crate key)."""

    def __init__(self, builds: dict[str, Build]) -> None:
        self.builds = builds
        self.calls: dict[str, frozenset[str]] = {}
        self.signatures: dict[str, str] = {}
        for key, build in builds.items():
            for name, refs in build.merged("bevy-calls", _calls_of).items():
                self.calls.setdefault(name, refs)
            self.signatures.update(build.layouts(namespace(key)).signatures)
        self.systems = self._systems()

    @staticmethod
    def of(builds: dict[str, Build]) -> BevyTerms | None:
        if not any(build.merged("bevy-uses", _uses_bevy) for build in builds.values()):
            return None
        return BevyTerms(builds)

    def _mine(self, symbol: str) -> bool:
        return patch_warnings.in_app_sources(self.builds, symbol)

    def _reached(self, start: str) -> tuple[set[str], set[str]]:
        """(the app's functions, the dependencies' generic instances) that `start`'s code
        reaches, not looking inside the app's functions."""
        mine: set[str] = set()
        seen = {start}
        todo = [start]
        while todo:
            for name in self.calls.get(todo.pop(), ()):
                if name in seen or name not in self.calls:
                    continue
                seen.add(name)
                if self._mine(name):
                    mine.add(name)
                else:
                    todo.append(name)
        return mine, seen

    def _systems(self) -> dict[str, System]:
        """The app's function -> the system or observer it is."""
        # Demangling is slow: only the names that can be what is looked for are demangled.
        runs = [n for n in self.calls if "run_unsafe" in n and demangle(n).startswith(_RUN_UNSAFE)]
        runs = [n for n in runs if demangle(n).endswith(" as bevy_ecs::system::system::System>::run_unsafe")]
        fns: dict[str, str] = {}  # run_unsafe instance -> the one app function it runs
        for run in runs:
            mine, _ = self._reached(run)
            if len(mine) == 1:
                fns[run] = next(iter(mine))
        schedules: dict[str, str] = {}
        observers: set[str] = set()
        for name in self.calls:
            if "add_systems" not in name and "add_observer" not in name:
                continue
            what = demangle(name)
            if what not in (_ADD_SYSTEMS, _ADD_OBSERVER):
                continue
            _, seen = self._reached(name)
            reached = {fns[run] for run in seen if run in fns}
            if what == _ADD_OBSERVER:
                observers |= reached
                continue
            label = _label(self.signatures.get(name, ""))
            for fn in reached:
                if label:
                    schedules.setdefault(fn, label)
        return {
            fn: System(
                fn,
                "observer" if fn in observers else "system",
                schedules.get(fn),
                self.signatures.get(fn),
            )
            for fn in fns.values()
        }

    def by_name(self) -> dict[str, System]:
        return {s.name: s for s in self.systems.values()}

    def is_component(self, type_name: str) -> bool:
        named = (demangle(n) for n in self.calls if "Component" in n)
        return any((m := _COMPONENT.match(d)) is not None and m[1] == type_name for d in named)


def _label(signature: str) -> str | None:
    """`Startup` from `(&mut bevy_app::app::App, Startup, fn(…)) -> &mut …`."""
    m = re.match(r"\(&mut [\w:]+, ([A-Za-z_][\w:]*), ", signature)
    return m[1].rsplit("::", 1)[-1] if m else None


def _params(signature: str | None) -> str:
    """`(Res<Time>, Query<&Position>)` from the debug info's `(Res<bevy_time::time::Time<()>>,
    Query<&bevy_headless::Position, ()>) -> ()`: the parameters as the user wrote them."""
    if not signature:
        return "(…)"
    params = re.sub(r"\b(?:[a-z_][a-z0-9_]*::)+", "", signature.rsplit(" -> ", 1)[0])
    return params.replace("<()>", "").replace(", ()>", ">")


def running_main(message: dict | None, before: dict[str, Build], after: dict[str, Build]) -> dict | None:
    """HL1010's `main` changed, said in Bevy's terms when a registration changed with it:
    a system whose parameters changed (a new `FunctionSystem` type, registered by the new
    `main` only) or a system or observer added. Bevy built its schedules once, at start-up,
    from the old `main`: the running app keeps its systems, so a restart is required."""
    if message is None:
        return None
    old_terms, new_terms = BevyTerms.of(before), BevyTerms.of(after)
    if old_terms is None or new_terms is None:
        return message
    old, new = old_terms.by_name(), new_terms.by_name()
    said: list[str] = []
    symbol = message["symbol"]
    for name, system in new.items():
        was = old.get(name)
        if was is None:
            where = f" to the {system.schedule} schedule" if system.schedule else ""
            said.append(
                f"the Bevy {system.kind} {system.name} was added{where}: Bevy builds its schedules "
                "and observers once, at start-up, so it will not run in the running app"
            )
        elif was.symbol != system.symbol and _params(was.signature) != _params(system.signature):
            said.append(
                f"the parameters of {was.described()} changed, {_params(was.signature)} → "
                f"{_params(system.signature)}: Bevy registered it at start-up with its old "
                "parameters and keeps running that registration (the new function is never called)"
            )
        else:
            continue
        symbol = system.symbol
    if not said:
        return message
    return message | {"symbol": symbol, "message": "; ".join(said)}


def startup_warnings(crate_dir: Path, before: dict[str, Build], changes: FunctionChanges) -> list[dict]:
    """HL1013 for an edited system of a Startup schedule: it ran once, before the first
    frame, and Bevy will not run it again; the patch applies, the edit shows on restart."""
    terms = BevyTerms.of(before)
    if terms is None:
        return []
    out = []
    for symbol in changes.edited:
        system = terms.systems.get(symbol)
        if system is not None and system.schedule in _STARTUP:
            message = (
                f"{system.described()} ran once at start-up and Bevy will not run it again: "
                "its new code takes effect after a restart (restart to apply)"
            )
            out.append(patch_warnings.warning(crate_dir, before, ALREADY_RAN, symbol, message))
    return out


def rude_edits(edits: list[RudeEdit], builds: dict[str, Build]) -> list[RudeEdit]:
    """A layout change of a Bevy component names it as one: the world stores every entity's
    value of it with the old layout."""
    if not any(e.rule in ("HL1001", "HL1002") for e in edits):
        return edits
    terms = BevyTerms.of(builds)
    if terms is None:
        return edits
    out = []
    for e in edits:
        if e.rule in ("HL1001", "HL1002") and e.symbol and terms.is_component(e.symbol):
            message = (
                f"Bevy component {e.symbol}: {e.message}; the world stores every entity's "
                f"{e.symbol.rsplit('::', 1)[-1]} with the old layout, which the new code would misread"
            )
            e = RudeEdit(e.rule, e.severity, message, e.symbol, e.file, e.line)
        out.append(e)
    return out
