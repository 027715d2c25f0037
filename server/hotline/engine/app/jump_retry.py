"""Retries of pending entry jumps (pending_jumps.py) a moment after the patch that left them.

A retry is a patch that adds no code: an empty image, no segments, no table, only the
pending jumps, sent under the session's lock like any patch (it takes the next patch
sequence number), so it gets the same stop, the same checks and the same self-check. When
jumps land, `jumps-landed` names their functions; jumps still pending after the last retry
go with the next patch.
"""

from __future__ import annotations

import threading
import time

from hotline.engine.analyse.demangle import demangle
from hotline.engine.app import handover
from hotline.engine.app.channel import ChannelError
from hotline.engine.app.pending_jumps import RETRY_AFTER_S
from hotline.engine.app.running_app import RunningApp
from hotline.engine.session_state import SessionState


def schedule(session: SessionState, running: RunningApp) -> None:
    """Starts the retries for `running`, unless they already run."""
    if getattr(running, "retrying", False):
        return
    running.retrying = True
    threading.Thread(target=_retries, args=(session, running), daemon=True).start()


def _retries(session: SessionState, running: RunningApp) -> None:
    try:
        for delay in RETRY_AFTER_S:
            time.sleep(delay)
            with session.patch_lock:  # never while a patch is on its way
                if session.running is not running or running.proc.poll() is not None:
                    return
                if not session.pending.jumps or retry(session, running):
                    return
    finally:
        running.retrying = False


def retry(session: SessionState, running: RunningApp) -> bool:
    """One retry (the caller holds the session's lock); True when nothing is pending after it."""
    sent = list(session.pending.jumps)
    seq = running.seq + 1
    image = session.target_dir / "patches" / "retry.img"
    try:
        image.parent.mkdir(parents=True, exist_ok=True)
        image.write_bytes(b"")
        result = running.channel.send_patch(
            {
                "seq": seq,
                "image": str(image),
                "segments": [],
                "imports": [],
                "eh_frame": None,
                "table": [],
                "entry_jumps": [[site, target] for _, site, target in sent],
            }
        )
    except (ChannelError, OSError) as e:
        session.on_event({"event": "jumps-pending", "functions": _names(sent), "reason": str(e)})
        return False
    running.seq = seq
    if result["status"] != "applied" or result["self_check"]:
        handover.save(session)
        why = result.get("reason") or "; ".join(result["self_check"])
        session.pending.clear()  # refused as such: they would spoil the next patch too
        session.on_event({"event": "jumps-pending", "functions": _names(sent), "reason": why})
        return True  # the app refused the jumps themselves: retrying them again would not help
    report = result["entry_jumps"]
    landed = session.pending.after_stop(sent, report)
    handover.save(session)
    if landed:
        session.on_event(
            {
                "event": "jumps-landed",
                "seq": seq,
                "functions": [demangle(n) for n in landed],
                "symbols": landed,
                "pending": [demangle(n) for n in session.pending.functions()],
            }
        )
    return not session.pending.jumps


def _names(jumps: list[tuple[str, int, int]]) -> list[str]:
    return [demangle(n) for n in dict.fromkeys(n for n, _, _ in jumps)]
