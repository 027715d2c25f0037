"""Live frames that have returned: HL1012 withdrawn once no thread runs the old copy.

HL1012 is said at the patch's stop: a thread was inside an old copy of an edited function.
Often it was only waiting in a call the function made (a frame's `sleep`, a worker's
blocking `recv`) and returns a moment or a while later; its next call then runs the new
code, and the warning, left standing next to that function's `· ran`, would contradict its
receipt. So once the receipt of such a function comes in (`ran`: its new code was entered),
a quiet stop looks for its old copies on the threads' stacks (`PatchChannel.look`: no code
of the app runs), and if no thread is inside one any more, a `returned` event withdraws the
warning. While one still is, it looks again 1, 2, 4, 8 and 16 s later: at most six stops per
patch, so a thread's own loop, which never leaves, keeps its HL1012 at a bounded cost.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from hotline.engine.analyse.demangle import demangle
from hotline.engine.app.channel import PatchChannel

log = logging.getLogger(__name__)

LOOK_AGAIN_AFTER = (1.0, 2.0, 4.0, 8.0, 16.0)  # seconds after each look that still found one


@dataclass
class LiveFrames:
    """The functions patch `seq` reported with HL1012, the ranges of their old copies, and
    the looks made for those whose new code ran."""

    seq: int
    copies: dict[str, list[tuple[int, int]]]
    ran: set[str] = field(default_factory=set)
    looks: int = 0
    stopped: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    timer: threading.Timer | None = None

    def stop(self) -> None:
        """No more looks: a newer patch says anew, or the app is gone."""
        with self.lock:
            self.stopped = True
            if self.timer is not None:
                self.timer.cancel()


def watch(seq: int, frames: list[tuple[int, int]], owners: list[str], live: dict) -> LiveFrames | None:
    """What to look for again once their receipts come in; `live` is `patched`'s
    `live_frames` field, `frames` and `owners` the old copies the stop looked for."""
    named = {f["symbol"] for f in live.get("frames", [])}
    copies: dict[str, list[tuple[int, int]]] = {}
    for frame, owner in zip(frames, owners, strict=True):
        if owner in named:
            copies.setdefault(owner, []).append(frame)
    return LiveFrames(seq, copies) if copies else None


def after_ran(
    live: LiveFrames | None,
    channel: PatchChannel,
    ran: dict,
    current: Callable[[], bool],
    report: Callable[[dict], None],
) -> None:
    """After a `ran` event: looks for the old copies of its HL1012 functions, and reports
    `returned` for those no thread is inside. `current()` is false once this patch is no
    longer the app's last or the app is gone."""
    if live is None or ran["seq"] != live.seq:
        return
    with live.lock:
        fresh = {s for s in ran["symbols"] if s in live.copies} - live.ran
        live.ran |= fresh
        pending = live.timer is not None
    if fresh and not pending:  # a pending look will see them too
        _look(live, channel, current, report)


def _look(
    live: LiveFrames, channel: PatchChannel, current: Callable[[], bool], report: Callable[[dict], None]
) -> None:
    with live.lock:
        live.timer = None
        if live.stopped or not current():
            return
        ranges = [(s, r) for s in sorted(live.ran) if s in live.copies for r in live.copies[s]]
        if not ranges:
            return
        try:
            found = channel.look([r for _, r in ranges])
        except (OSError, ValueError):  # the stop helper is gone with the app: the warning stays
            log.warning("looking again for live frames failed", exc_info=True)
            return
        if found is None or not current():  # no stop could look, or a newer patch says anew
            return
        live.looks += 1
        stuck = {ranges[hit["frame"]][0] for hit in found}
        gone = sorted({s for s, _ in ranges} - stuck)
        for symbol in gone:
            del live.copies[symbol]
        if stuck and live.looks <= len(LOOK_AGAIN_AFTER):
            live.timer = threading.Timer(
                LOOK_AGAIN_AFTER[live.looks - 1], _look, (live, channel, current, report)
            )
            live.timer.daemon = True
            live.timer.start()
        looks = live.looks
    if gone:
        report(
            {
                "event": "returned",
                "seq": live.seq,
                "functions": [demangle(s) for s in gone],
                "symbols": gone,
                "looks": looks,
            }
        )
