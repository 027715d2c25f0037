"""From the new objects of a save's crates to a linked patch ready to send, or the verdict
why there is none: the diff, the rude-edit rules, the patch scope, the link and the entry
jumps.

Planning reads what the app runs (`PatchBase`) and changes nothing, so it can also run
ahead of the save, on a speculative build's objects (speculative.py). A plan made ahead is
used only if the app still runs exactly what it was planned against (`PatchBase.key`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from hotline.engine.analyse.demangle import demangle
from hotline.engine.analyse.dwarf_reader import DwarfFormatError
from hotline.engine.analyse.entry_jumps import EntryJumps, JumpPlan
from hotline.engine.analyse.function_abi import AbiComparison, FunctionAbi
from hotline.engine.analyse.object_cache import Build
from hotline.engine.analyse.object_diff import FunctionChanges, diff_functions
from hotline.engine.analyse.patch_scope import patch_scope
from hotline.engine.analyse.rude_edits import RudeEdit, find_rude_edits
from hotline.engine.build.workspace import namespace
from hotline.engine.errors import PatchLinkError
from hotline.engine.link.executable import Executable
from hotline.engine.link.patch_link import LinkedPatch, ProcessSymbols, link_patch
from hotline.engine.report import framework_terms, patch_warnings
from hotline.engine.report.source_map import locate


@dataclass(frozen=True)
class PatchBase:
    """What the running app is made of now, and the settings a patch is planned with."""

    exe: Executable
    crate_name: str
    crate_dir: Path
    builds: dict[str, Build]  # per crate key: the objects the app runs
    slide: int
    prior: ProcessSymbols
    jumps: EntryJumps
    region_next: int
    region_end: int
    allow_layout_changes: frozenset[str]
    entry_jumps: bool
    #: Changes with every patch sent and every build accepted: a plan is for one key only.
    key: tuple = ()


@dataclass
class Verdict:
    """No patch to send: the event to emit (`patch-refused` or `no-change`)."""

    kind: str
    fields: dict
    accept: bool = False  # the app already runs what these objects do (no-change)


@dataclass
class PatchPlan:
    """A patch linked for the running app, with what the `patched` event reports."""

    changes: FunctionChanges
    resigned: list[str]
    warnings: list[dict]
    linked: LinkedPatch
    jumps: JumpPlan
    units: dict[str, int]  # linked, and total rebuilt
    diff_done: float = field(default=0.0)  # perf_counter when the diff and rules were done
    # The changed functions (moves aside) split by where they are declared: the app's own
    # (what the user edited), and generic instances of other crates compiled into the
    # rebuilt crates that carry the edit (inlined into them, or instantiated for its types).
    edited: list[str] = field(default_factory=list)
    carried: list[str] = field(default_factory=list)


@dataclass
class PlannedAhead:
    """A patch planned from a speculative build before its save, for the base `key` only."""

    key: tuple
    new: dict[str, Build]  # per crate key: the build's objects
    plan: PatchPlan


def plan_patch(base: PatchBase, new: dict[str, Build], diags: list[dict]) -> PatchPlan | Verdict:
    """The patch that brings the app from `base.builds` to `new` (per crate key)."""
    changes = FunctionChanges([], [], [])
    rude: list[RudeEdit] = []
    for key, build in new.items():
        name = namespace(key)  # a binary's key is `name.bin` (Crate.key)
        changes = changes.merge(diff_functions(base.builds[key].fingerprints, build.fingerprints))
        try:
            found = find_rude_edits(base.builds[key], build, name, base.allow_layout_changes)
        except DwarfFormatError as e:  # without layouts a patch cannot be checked: refuse it
            return Verdict(
                "patch-refused", {"rule": "HL1099", "reason": f"cannot read {name}'s debug info: {e}"}
            )
        rude += [_with_location(base.crate_dir, r) for r in found]
    diff_done = time.perf_counter()
    rude = framework_terms.rude_edits(rude, new)  # a Bevy component named as one
    errors = [r for r in rude if r.severity == "error"]
    warnings = [r.to_json() for r in rude if r.severity == "warning"]
    if errors:
        return Verdict(
            "patch-refused",
            {
                "rule": errors[0].rule,
                "symbol": errors[0].symbol,
                "reason": "; ".join(r.message for r in errors) + ": restart required",
                "rude_edits": [r.to_json() for r in errors] + warnings,
                "diagnostics": diags,
            },
        )
    if not changes.any:
        return Verdict("no-change", {"diagnostics": diags, "warnings": warnings}, accept=True)
    running_main = patch_warnings.running_main(base.crate_name, changes)
    running_main = framework_terms.running_main(running_main, base.builds, new)  # in Bevy's terms
    if running_main is not None and running_main.get("refuse"):
        return Verdict(
            "patch-refused",
            {
                "rule": "HL1010",
                "symbol": running_main["symbol"],
                "reason": running_main["message"] + ": restart required",
                "diagnostics": diags,
            },
        )
    if running_main is not None:
        warnings.append(
            patch_warnings.warning(
                base.crate_dir, new, "HL1010", running_main["symbol"], running_main["message"]
            )
        )
    rebuilt = [obj for build in new.values() for obj in build.objects]
    resigned = patch_warnings.signature_changes(base.builds, new, changes)
    abi = AbiComparison(_abi_lookup([base.builds[k] for k in new]), _abi_lookup(list(new.values())))

    def redirectable(name: str) -> bool:
        """Every old copy may jump to the new one: old callers pass what it expects."""
        return name not in resigned and base.jumps.obstacle(name) is None and abi.change(name) is None

    scope = patch_scope(
        rebuilt,
        changes.changed + changes.added,
        lambda name: name not in base.prior.code and base.exe.is_ambiguous(name),
        redirectable if base.entry_jumps else None,
    )
    try:
        linked = link_patch(scope.objects, base.exe, base.slide, base.prior, base.region_next)
    except PatchLinkError as e:
        return Verdict(
            "patch-refused", {"rule": e.rule, "reason": str(e), "symbol": e.symbol, "diagnostics": diags}
        )
    redirect = [n for n in scope.redirect if n not in resigned and abi.change(n) is None]
    jumps = base.jumps.plan(redirect, linked.functions) if base.entry_jumps else JumpPlan()
    reshaped = abi.changed()
    # Callers of the old copies of these were compiled for another signature or layout:
    # no later patch may redirect those copies either.
    linked.frozen = {
        at: f"its callers were compiled for an older signature or layout of {demangle(name)}"
        for name in [*resigned, *reshaped]
        for at in base.jumps.copies(name)
    }
    warnings += patch_warnings.abi_warnings(base.crate_dir, new, changes, reshaped)
    warnings += framework_terms.startup_warnings(base.crate_dir, base.builds, changes)
    if base.region_next + linked.size > base.region_end:
        return Verdict(
            "patch-refused", {"rule": "HL1098", "reason": "the patch region is full: restart the app"}
        )
    units = {"linked": len(scope.objects), "total": len(rebuilt)}
    own = [n for n in changes.edited if patch_warnings.in_app_sources(new, n)]
    carried = [n for n in changes.edited if n not in own]
    edited = own or carried  # an edit of a dependency's generic code itself: name that
    carried = carried if own else []
    return PatchPlan(changes, resigned, warnings, linked, jumps, units, diff_done, edited, carried)


def _abi_lookup(builds: list[Build]) -> Callable[[str], FunctionAbi | None]:
    """A function's ABI in whichever of `builds` defines it."""
    return lambda symbol: next((abi for b in builds if (abi := b.abi(symbol)) is not None), None)


def _with_location(crate_dir: Path, edit: RudeEdit) -> RudeEdit:
    """Adds the source line of the type or static an edit is about, when debug info had none."""
    if edit.file or not edit.symbol:
        return edit
    keyword = {"HL1004": "static", "HL1005": "static"}.get(edit.rule, edit.message.split(" ", 1)[0])
    if keyword not in ("struct", "enum", "union", "static"):
        return edit
    found = locate(crate_dir, edit.symbol, keyword)
    return replace(edit, file=found[0], line=found[1]) if found else edit
