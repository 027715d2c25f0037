"""One save's patch: the crates it dirtied recompiled (or taken from the speculative build),
diffed against what the app runs and linked (patch_plan.py), then delivered (patch_delivery.py);
or the outcome that says why not."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from hotline.engine.app.patch_delivery import Save, deliver
from hotline.engine.app.running_app import RunningApp
from hotline.engine.build.rustc_diagnostics import diagnostics
from hotline.engine.build.workspace import REPLAYED_MARK, Crate, dirty_crates, owning_crate
from hotline.engine.patch_plan import PatchBase, PatchPlan, PlannedAhead, Verdict, plan_patch
from hotline.engine.session_state import Outcome, SessionState, elapsed_ms

RUSTC_TRIES = 3  # compiles of one crate per patch, while its sources change under rustc


def patch(session: SessionState, changed: list[Path]) -> Outcome:
    """The save's outcome, patched or not (the caller holds the session's patch lock)."""
    started = time.perf_counter()
    running = session.running
    if running is None or running.proc.poll() is not None or session.exe is None:
        return session.emit("patch-refused", rule="HL1000", reason="the app is not running: start it first")
    seq = running.seq + 1
    session.on_event({"event": "patch-started", "seq": seq})
    outside = [p for p in changed if p.suffix == ".rs" and owning_crate(session.crates, p) is None]
    foreign = sorted({name for p in outside if (name := session.outside_package(p)) is not None})
    if foreign:
        folder = session.outside_packages[foreign[0]]
        return session.emit(
            "patch-refused",
            rule="HL1006",
            symbol=foreign[0],
            reason=f"{foreign[0]} ({folder}) is a path dependency outside the workspace, which Hotline "
            "does not rebuild per save: full rebuild required (or add it to the workspace's members)",
        )
    if changed and len(outside) == len(changed):
        shown = ", ".join(str(p) for p in outside)
        return session.emit(
            "no-change", message=f"{shown} is not part of {session.bin_name}'s build", ms=elapsed_ms(started)
        )
    dirty = dirty_crates(session.crates)
    if not dirty:
        return session.emit("no-change", message="no source of the app changed", ms=elapsed_ms(started))
    macros = [c.name for c in dirty if c.kind == "proc-macro"]
    if macros:
        return session.emit(
            "patch-refused",
            rule="HL1006",
            symbol=macros[0],
            reason=f"proc-macro crate {macros[0]} changed: full rebuild required",
        )
    work = session.target_dir / "patches" / str(seq)
    shutil.rmtree(work, ignore_errors=True)
    folders = {crate.key: work / "objects" / crate.key for crate in dirty}
    (session.capture_dir / REPLAYED_MARK).touch()
    # compiled while the user typed, from exactly the files now saved
    speculated = session.speculative.take(dirty, folders)
    if speculated is not None:
        diags = diagnostics(speculated.stderr)
        for crate in dirty:
            crate.pending_at = speculated.hashed_at
    else:
        compiled = _compile(session, dirty, folders, started)
        if isinstance(compiled, Outcome):
            return compiled
        diags = compiled
    t_rustc = time.perf_counter()

    base = _base(session, running)
    ahead: PlannedAhead | None = speculated.plan if speculated is not None else None
    planned_ahead = ahead is not None and ahead.key == base.key
    if ahead is not None and planned_ahead:  # while the user paused
        new, plan = ahead.new, ahead.plan
        t_diff = time.perf_counter()
    else:
        new = {key: session.objects.load(folder) for key, folder in folders.items()}
        plan = plan_patch(base, new, diags)
        t_diff = plan.diff_done if isinstance(plan, PatchPlan) else time.perf_counter()
    session.objects.forget_all_but(*session.builds.values(), *new.values())
    if isinstance(plan, Verdict):
        if plan.accept:
            session.accept(dirty, new, folders)
        ms = {"ms": elapsed_ms(started)} if plan.kind == "no-change" else {}
        return session.emit(plan.kind, **plan.fields, **ms)
    t_link = time.perf_counter()
    save = Save(seq, dirty, folders, new, diags, work, speculated is not None, planned_ahead, started)
    phases = {
        "rustc": elapsed_ms(started, t_rustc),
        "diff": elapsed_ms(t_rustc, t_diff),
        "link": elapsed_ms(t_diff, t_link),
    }
    return deliver(session, running, save, plan, phases, t_link)


def _compile(
    session: SessionState, dirty: list[Crate], folders: dict[str, Path], started: float
) -> list[dict] | Outcome:
    """The dirty crates' captured rustc commands replayed (workspace.py), dependencies
    first; rustc's diagnostics, or the `compile-error` outcome."""
    diags: list[dict] = []
    for crate in dirty:
        folders[crate.key].mkdir(parents=True)
        for _ in range(RUSTC_TRIES):
            crate_started = time.time()
            rc, stderr = crate.replay(folders[crate.key])
            # An editor saves by truncating and writing the file: a save written while rustc
            # read the sources (the next save of a quick series) can make it read half a file.
            # Its errors are no one's: compile what is on disk now.
            if rc <= 0 or not crate.written_since(crate_started):
                break
        diags += diagnostics(stderr)
        if rc < 0:
            message = f"rustc was killed by signal {-rc} while compiling {crate.name}"
            return session.emit(
                "compile-error", diagnostics=diags, crate=crate.name, message=message, ms=elapsed_ms(started)
            )
        if rc != 0:
            return session.emit("compile-error", diagnostics=diags, crate=crate.name, ms=elapsed_ms(started))
        crate.pending_at = crate_started
    return diags


def _base(session: SessionState, running: RunningApp) -> PatchBase:
    assert session.exe is not None
    return PatchBase(
        exe=session.exe,
        crate_name=session.crate_name,
        crate_dir=session.crate_dir,
        builds=dict(session.builds),
        slide=running.slide,
        prior=running.prior,
        jumps=running.jumps,
        region_next=running.region_next,
        region_end=running.region_end,
        allow_layout_changes=session.allow_layout_changes,
        entry_jumps=session.entry_jumps,
        key=(  # the launch, the patches sent to it, and what each crate runs
            session.build_id,
            id(running),
            running.seq,
            running.region_next,
            tuple((k, id(b)) for k, b in session.builds.items()),
            tuple(sorted(session.allow_layout_changes)),  # a setting the editor changes live
        ),
    )


def plan_ahead(session: SessionState, folders: dict[str, Path]) -> PlannedAhead | None:
    """Called by the speculative builder when a build is done: its patch planned now,
    against what the app runs, so that a save of these texts only sends it. Skipped
    while a save or another patch holds the session (that save plans for itself)."""
    if not session.patch_lock.acquire(blocking=False):
        return None
    try:
        running = session.running
        if running is None or running.proc.poll() is not None:
            return None
        base = _base(session, running)
        new = {key: session.objects.load(folder) for key, folder in folders.items()}
        plan = plan_patch(base, new, [])
        return PlannedAhead(base.key, new, plan) if isinstance(plan, PatchPlan) else None
    finally:
        session.patch_lock.release()


def prune_patch_dirs(session: SessionState) -> None:
    """Deletes the work folders of earlier patches, this launch's or an earlier one's:
    all in them was read into memory, and their hard links would keep every replaced
    object file on disk."""
    keep = str(session.running.seq) if session.running else None
    root = session.target_dir / "patches"
    for folder in root.iterdir() if root.is_dir() else ():
        if folder.name != keep:
            shutil.rmtree(folder, ignore_errors=True)
