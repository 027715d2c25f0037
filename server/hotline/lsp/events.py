"""Engine events -> LSP: hotline/status and hotline/output notifications, progress, diagnostics,
log messages and the state the lenses are drawn from. Handled on the loop (core.on_engine_event)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from lsprotocol import types

from hotline.engine.build.rustc_diagnostics import error_count
from hotline.lsp import code_lens, lenses
from hotline.lsp.diagnostics import publish, rude_edit_diagnostic

if TYPE_CHECKING:
    from hotline.lsp.core import HotlineLanguageServer

log = logging.getLogger("hotline.lsp")

OUTPUT = "hotline/output"


def handle_event(ls: HotlineLanguageServer, event: dict) -> None:
    try:
        _handle_event(ls, event)
    except Exception:  # never let one event break the stream
        log.exception("handling engine event %s", event.get("event"))


def _handle_event(ls: HotlineLanguageServer, event: dict) -> None:
    kind = event["event"]
    if kind == "app-output":
        ls.protocol.notify(OUTPUT, {"stream": event["stream"], "line": event["line"]})
    elif kind == "build-started":
        ls.status("building", message=f"{event['kind']} build")
        ls.work_progress.end(ls.build_token)
        ls.build_token = ls.work_progress.begin("build", "Hotline: building", f"0/{event['total']}", 0)
    elif kind == "build-progress":
        if ls.build_token is not None:
            total = max(1, event["total"])
            ls.work_progress.report(
                ls.build_token,
                f"{event['done']}/{event['total']} {event['crate']}",
                min(100, event["done"] * 100 // total),
            )
    elif kind == "build-finished":
        ls.work_progress.end(ls.build_token, "done" if event["ok"] else "failed")
        ls.build_token = None
        publish(ls, event.get("diagnostics") or [])
        if not event["ok"]:
            ls.status("error", ms=event.get("ms"), message="the build failed")
    elif kind == "orphan-stopped":
        message = f"Hotline stopped the app (pid {event['pid']}) an earlier server left running"
        if event.get("reason"):
            message += f": {event['reason']}"
        ls.window_log_message(types.LogMessageParams(type=types.MessageType.Info, message=message))
    elif kind == "engine-error":
        ls.work_progress.end(ls.build_token, "failed")
        ls.work_progress.end(ls.patch_token, "failed")
        ls.build_token = ls.patch_token = None
        ls.error(
            f"Hotline internal error: {event['message']} (details: {event['log']}); "
            "the app keeps running its last good code"
        )
    elif kind == "speculative-build" and ls.settings.get("speculativeDiagnostics", False):
        publish(ls, event["diagnostics"], ls.diagnostics[1])  # the typed text's errors, or none
    elif kind == "speculation":  # a trace in the client's log, like rust-analyzer's
        message = (
            f"Hotline speculative builds: {event['builds']} started, {event['ended']} ended, "
            f"{event['used']} used by a save, "
            f"{event['killed']} killed; rustc CPU {event['cpu_s_used']:.2f} s used, "
            f"{event['cpu_s_wasted']:.2f} s thrown away"
        )
        ls.window_log_message(types.LogMessageParams(type=types.MessageType.Log, message=message))
    elif kind == "debug-info-failed":
        message = f"Hotline [{event['rule']}]: {event['message']}"
        ls.window_log_message(types.LogMessageParams(type=types.MessageType.Warning, message=message))
    elif kind in ("app-started", "app-adopted"):
        ls.app_pid, ls.runtime = event["pid"], event["runtime"]
        ls.last_patch = ls.last_refused = None
        if kind == "app-adopted":  # an app an earlier engine left running: no build, same state
            message = f"Hotline re-attached to the running app (pid {event['pid']})"
            ls.window_log_message(types.LogMessageParams(type=types.MessageType.Info, message=message))
        ls.status("running")
        ls.refresh_lenses()
    elif kind == "app-exited":
        if event["pid"] == ls.app_pid:
            ls.app_pid = None
            code = event.get("code")
            message = (
                f"killed by signal {event['signal']}" if event.get("signal") else f"exited with code {code}"
            )
            ls.status("stopped", exitCode=code, message=message)
            ls.refresh_lenses()
    elif kind == "patch-started":
        ls.status("patching")
        ls.patch_token = ls.work_progress.begin("patch", "Hotline: patching", f"patch #{event['seq']}")
    elif kind in ("patched", "compile-error", "no-change", "patch-refused"):
        _patch_outcome(ls, kind, event)
    elif kind == "jumps-landed":
        landed = f"entry jumps landed: {', '.join(event['functions'])} now run the new code"
        last = ls.last_patch or {}
        ls.status("patched", ms=last.get("ms"), functions=last.get("functions"), message=landed)
    elif kind in ("ran", "not-run"):
        _receipt(ls, kind, event)
    elif kind == "returned":
        _returned(ls, event)


def _returned(ls: HotlineLanguageServer, event: dict) -> None:
    """Functions of the last patch whose live frames (HL1012) have returned: their lens,
    diagnostic and status word are withdrawn (engine/app/returned_frames.py)."""
    if ls.last_patch is None or event["seq"] != ls.last_patch["seq"]:
        return
    live = ls.last_patch.get("live_frames") or {}
    gone = [f for f in live.get("frames", []) if f["symbol"] in event["symbols"]]
    ls.last_patch["live_frames"] = live | {"frames": [f for f in live.get("frames", []) if f not in gone]}
    places = {(f.get("file"), f.get("line")) for f in gone}
    rustc, own = ls.diagnostics
    publish(ls, rustc, [d for d in own if not (d["code"]["code"] == "HL1012" and _place(d) in places)])
    if ls.state == "patched":
        _patched_status(ls)
    ls.refresh_lenses()


def _patched_status(ls: HotlineLanguageServer) -> None:
    """The status of the last patch, with what is still to say about it: a function not run
    since it (HL1013), or old code still running (HL1012) or jumps pending."""
    assert ls.last_patch is not None
    not_run = [f for f, (state, _) in ls.receipts.items() if state == "not-run"]
    ls.status(
        "patched",
        ms=ls.last_patch["ms"],
        functions=ls.last_patch["functions"] + ls.last_patch.get("added", []),
        message=lenses.not_run_status(not_run) or lenses.live_status(ls.last_patch),
    )


def _place(diagnostic: dict) -> tuple[str, int]:
    span = diagnostic["spans"][0]
    return span["file_name"], span["line_start"]


def _receipt(ls: HotlineLanguageServer, kind: str, event: dict) -> None:
    """A receipt of the last patch: on its lenses, and quietly in the status (no popup)."""
    if ls.last_patch is None or event["seq"] != ls.last_patch["seq"]:
        return
    was_not_run = any(ls.receipts.get(f, ("", ""))[0] == "not-run" for f in event["functions"])
    if kind == "ran":
        ls.receipts.update((f, ("ran", "")) for f in event["functions"])
    else:
        ls.receipts.update(
            (f, ("not-run", w["message"])) for f, w in zip(event["functions"], event["warnings"], strict=True)
        )
    if kind == "not-run" or (was_not_run and ls.state == "patched"):
        _patched_status(ls)
    ls.refresh_lenses()


def _patch_outcome(ls: HotlineLanguageServer, kind: str, event: dict) -> None:
    rude = [e for e in event.get("rude_edits", []) + event.get("warnings", []) if e.get("file")]
    if "diagnostics" in event or rude:
        publish(ls, event.get("diagnostics") or [], [rude_edit_diagnostic(e, ls.crate_dir) for e in rude])
    if kind == "patched":
        ls.last_patch, ls.last_refused = event, None
        ls.receipts = {}
        ls.patched_sources = code_lens.saved_texts(ls, event)
        ls.work_progress.end(ls.patch_token, f"patched in {event['ms']:g} ms")
        ls.status(
            "patched",
            ms=event["ms"],
            functions=event["functions"] + event.get("added", []),
            message=lenses.live_status(event),
        )
    elif kind == "compile-error":
        errors = error_count(event["diagnostics"])
        ls.work_progress.end(ls.patch_token, "compile error")
        ls.status("error", ms=event["ms"], message=f"compile error ({errors} error{'s' * (errors != 1)})")
    elif kind == "no-change":
        ls.work_progress.end(ls.patch_token, "no change")
        ls.status("running" if ls.running else "stopped", ms=event["ms"], message="no code change")
    else:
        ls.last_refused = event
        ls.refused_sources = code_lens.refused_texts(ls, event)
        ls.work_progress.end(ls.patch_token, "refused")
        ls.status("error", message=f"patch refused ({event['rule']}): {event['reason']}")
    ls.patch_token = None
    ls.refresh_lenses()
