"""Live frames that have returned: HL1012 withdrawn once no thread runs the old copy.

HL1012 is said at the patch's stop: a thread was inside an old copy of an edited function.
Often it was only waiting in a call the function made (a frame's `sleep`, a blocking read)
and returns a moment later; its next call then runs the new code, and the warning, left
standing next to that function's `· ran`, would contradict its receipt. So when the
receipt of such a function comes in (`ran`: its new code was entered), one more quiet stop
looks for its old copies on the threads' stacks (`PatchChannel.look`, no code of the app
runs), and if no thread is inside one any more, a `returned` event withdraws the warning.
One look per function and patch: a function whose old frame is still there (a thread's own
loop) keeps its HL1012 until the next patch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hotline.engine.analyse.demangle import demangle
from hotline.engine.app.channel import PatchChannel


@dataclass
class LiveFrames:
    """The functions patch `seq` reported with HL1012, and the ranges of their old copies."""

    seq: int
    copies: dict[str, list[tuple[int, int]]]


def watch(seq: int, frames: list[tuple[int, int]], owners: list[str], live: dict) -> LiveFrames | None:
    """What to look for again once their receipts come in; `live` is `patched`'s
    `live_frames` field, `frames` and `owners` the old copies the stop looked for."""
    named = {f["symbol"] for f in live.get("frames", [])}
    copies: dict[str, list[tuple[int, int]]] = {}
    for frame, owner in zip(frames, owners, strict=True):
        if owner in named:
            copies.setdefault(owner, []).append(frame)
    return LiveFrames(seq, copies) if copies else None


def look_again(
    live: LiveFrames | None, channel: PatchChannel, ran: dict, current_seq: Callable[[], int]
) -> dict | None:
    """After `ran`: the `returned` event for the functions of it that HL1012 named, whose old
    copies no thread is inside any more; None if none (or no stop could look)."""
    if live is None or ran["seq"] != live.seq:
        return None
    symbols = [s for s in ran["symbols"] if s in live.copies]
    if not symbols:
        return None
    ranges = [(s, r) for s in symbols for r in live.copies.pop(s)]
    found = channel.look([r for _, r in ranges])
    if found is None or current_seq() != live.seq:  # cannot look, or a newer patch says anew
        return None
    stuck = {ranges[hit["frame"]][0] for hit in found}
    gone = [s for s in symbols if s not in stuck]
    if not gone:
        return None
    return {"event": "returned", "seq": live.seq, "functions": [demangle(s) for s in gone], "symbols": gone}
