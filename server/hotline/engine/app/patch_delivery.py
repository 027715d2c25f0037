"""A linked patch delivered: written for the app, sent over its channel, and what the app
did with it reported (`patched`, or `patch-refused`); then its receipts followed and its
debug info written in the background."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

from hotline.engine.analyse.demangle import demangle
from hotline.engine.analyse.object_cache import Build
from hotline.engine.app import app_record, handover, jump_retry, returned_frames
from hotline.engine.app.channel import ChannelError
from hotline.engine.app.running_app import RunningApp
from hotline.engine.build.workspace import Crate
from hotline.engine.errors import InternalError
from hotline.engine.link.debug_elf import SLOT, DebugInfoWriter
from hotline.engine.link.patch_link import LinkedPatch
from hotline.engine.patch_plan import PatchPlan
from hotline.engine.report import applied_patch, live_frames, patch_warnings
from hotline.engine.report.receipts import Receipts, receipt_carriers, receipt_warnings, referenced_by
from hotline.engine.session_state import Outcome, SessionState, elapsed_ms


@dataclass
class Save:
    """One save's patch on its way to the app: what it rebuilt, and where."""

    seq: int
    dirty: list[Crate]  # the crates it rebuilt, dependencies first
    folders: dict[str, Path]  # per crate key: their new objects
    new: dict[str, Build]  # per crate key: those objects, loaded
    diags: list[dict]  # rustc's
    work: Path  # this patch's folder
    speculative: bool  # compiled while the user typed
    planned_ahead: bool  # and diffed and linked then too
    started: float


def deliver(
    session: SessionState,
    running: RunningApp,
    save: Save,
    plan: PatchPlan,
    phases: dict[str, float],
    t_link: float,
) -> Outcome:
    """Sends the linked patch to the app, and reports what it did with it."""
    linked, changes, seq, new, diags = plan.linked, plan.changes, save.seq, save.new, save.diags
    assert session.exe is not None
    # this patch's jumps, and those an earlier stop could not write (pending_jumps.py)
    sent = session.pending.with_plan(plan.jumps.jumps, set(changes.changed)) if session.entry_jumps else []
    # the old copies looked for on the threads' stacks in the same stop (live_frames.py)
    frames, owners = live_frames.old_copies(session.exe, running.slide, running.prior, changes.edited)
    image = save.work / "patch.img"
    try:
        image.write_bytes(linked.image)
    except OSError as e:  # disk full, say: the app is untouched
        return session.emit("patch-refused", rule="HL1097", reason=f"cannot write the patch image: {e}")
    message = {
        "seq": seq,
        "image": str(image),
        "segments": linked.segments,
        "imports": [{"slot": s, "name": n} for s, n in linked.imports],
        "eh_frame": linked.eh_frame,
        "table": [list(p) for p in linked.table],
        "entry_jumps": [[site, target] for _, site, target in sent],
        "frames": frames,  # looked for in the stop, never sent (channel.py)
    }
    try:
        result = running.channel.send_patch(message)
    except ChannelError as e:
        return session.emit("patch-refused", rule="HL1097", reason=str(e), diagnostics=diags)
    t_done = time.perf_counter()
    running.seq = seq
    # From here on the app has this seq: each outcome is saved for the next engine before
    # it is reported, so that an engine killed right after the report is re-attached from.
    if result["status"] != "applied":
        handover.save(session)
        return session.emit(
            "patch-refused", rule="HL1096", reason=result.get("reason", ""), diagnostics=diags
        )
    running.region_next += -(-linked.size // SLOT) * SLOT  # each patch starts a debug slot
    running.prior.record(linked)
    if result["self_check"]:  # applied, yet not all in place: never reported as patched
        session.accept(save.dirty, new, save.folders)
        handover.save(session)
        reason = "; ".join(result["self_check"])
        return session.emit(
            "patch-refused",
            rule="HL1094",
            reason=f"the app applied the patch, but its self-check failed ({reason}): restart required",
            diagnostics=diags,
        )
    jump_report = result.get("entry_jumps") or {}
    warnings = applied_patch.warnings(session.crate_dir, new, plan, jump_report, session.entry_jumps)
    landed = session.pending.after_stop(sent, jump_report) if session.entry_jumps else []
    found = running.channel.live_frames
    if found is None and not sent:  # no stop wrote jumps: one only to look
        found = running.channel.look(frames)
    live, live_warnings = applied_patch.live_frames_report(
        session.crate_dir, new, owners, found, warnings, running.channel, sent
    )
    warnings += live_warnings
    if running.live is not None:
        running.live.stop()
    running.live = returned_frames.watch(seq, frames, owners, live)
    before = [session.builds[k] for k in new if k in session.builds]  # what the app ran until now
    session.accept(save.dirty, new, save.folders)
    session.last_patched = {
        "seq": seq,
        "functions": [demangle(n) for n in changes.changed + changes.added],
        "symbols": changes.changed + changes.added,
    }
    apply_ms = result["apply_us"] / 1000
    phases |= {
        "deliver": max(0.0, round(elapsed_ms(t_link, t_done) - apply_ms, 1)),
        "apply": round(apply_ms, 1),
    }
    handover.save(session)
    outcome = session.emit(
        "patched",
        seq=seq,
        ms=elapsed_ms(save.started, t_done),
        phases=phases,
        # only what the user edited; functions relinked because a line above them moved
        # (their panic Locations) are patched all the same, and counted in `relinked`
        functions=[demangle(n) for n in plan.edited],
        carried=[demangle(n) for n in plan.carried],
        relinked=len(changes.moved),
        added=[demangle(n) for n in changes.added],
        symbols=changes.changed + changes.added,
        crates=[c.name for c in save.dirty],
        speculative=save.speculative,
        planned_ahead=save.planned_ahead,
        units=plan.units,
        entry_jumps={
            "written": jump_report.get("written", 0),
            "skipped": len(plan.jumps.skipped)
            + len(jump_report.get("busy", []))
            + len(jump_report.get("held", [])),
        },
        locations=patch_warnings.locations(new, changes.edited + changes.added),
        diagnostics=diags,
        warnings=warnings,
        live_frames=live,
        pending_jumps={
            "landed": [demangle(n) for n in landed],
            "pending": [demangle(n) for n in session.pending.functions()],
        },
    )
    if landed:
        session.emit(
            "jumps-landed",
            seq=seq,
            functions=[demangle(n) for n in landed],
            symbols=landed,
            pending=[demangle(n) for n in session.pending.functions()],
        )
    if session.pending.jumps:
        jump_retry.schedule(session, running)
    _receipts(session, running).track(
        seq,
        linked,
        receipt_warnings(session.crate_dir, new, plan.edited),
        receipt_carriers(new, plan.edited, changes.changed + changes.added),
        # its own copy is called if the app's code, before or after this patch, refers to it
        referenced_by([*session.builds.values(), *before], plan.edited),
        explained={f["symbol"] for f in live.get("frames", [])},  # HL1012 says why
    )
    if session.debug_info:
        _debug_info_after_patch(session, running, seq, linked)
    return outcome


def _receipts(session: SessionState, running: RunningApp) -> Receipts:
    """The app's receipt reader (receipts.py), started at its first patch; its events stop
    once this engine stopped the app or let go of it."""
    if running.receipts is None:

        def on_event(e: dict) -> None:
            if session.running is not running:
                return
            session.on_event(e)
            if e["event"] == "ran":
                seq = e["seq"]
                returned_frames.after_ran(
                    running.live,
                    running.channel,
                    e,
                    lambda: session.running is running and running.seq == seq,
                    session.on_event,
                )

        def on_failure(e: Exception) -> None:  # a channel closed by the app's exit is no news
            if session.running is running and not app_record.exiting(running.proc.pid):
                with contextlib.suppress(InternalError), session.reported("reading the app's receipts"):
                    raise e

        running.receipts = Receipts(running.channel, on_event, on_failure)
    return running.receipts


def _debug_info_after_patch(
    session: SessionState, running: RunningApp, seq: int, linked: LinkedPatch
) -> None:
    """After `patched` is out: the patch's debug ELF, its perf map lines and the
    debug-info message are made on a background thread (debug_elf.py). Once this engine
    stopped the app or let go of it, or the app exited (its `app-exited` is the news), a
    delivery the closed channel cut short is not reported."""
    if running.debug is None:

        def on_event(e: dict) -> None:
            if session.running is running and app_record.start_time(running.proc.pid) is not None:
                session.on_event(e)

        running.debug = DebugInfoWriter.for_channel(running.channel, session.build_id, on_event)
    running.debug.submit(seq, linked, running.proc.pid)
