"""The warnings of the `patched` event, once the app applied the patch: entry jumps that did
not land and changed signatures (patch_warnings.py), and old copies of the edited functions
still running on a thread's stack (live_frames.py), or why no stop looked for them."""

from __future__ import annotations

from pathlib import Path

from hotline.engine.analyse.object_cache import Build
from hotline.engine.app.channel import PatchChannel
from hotline.engine.patch_plan import PatchPlan
from hotline.engine.report import live_frames, patch_warnings


def warnings(
    crate_dir: Path, new: dict[str, Build], plan: PatchPlan, jump_report: dict, entry_jumps: bool
) -> list[dict]:
    """The plan's warnings, and those about the app's answer: its entry jumps report."""
    out = list(plan.warnings)
    if entry_jumps:
        out += patch_warnings.jump_warnings(crate_dir, new, plan.changes, plan.jumps, jump_report)
    out += patch_warnings.signature_warnings(crate_dir, new, plan.resigned)
    return out


def live_frames_report(
    crate_dir: Path,
    new: dict[str, Build],
    owners: list[str],
    found: list[dict] | None,
    warnings: list[dict],
    channel: PatchChannel,
    sent: list,
) -> tuple[dict, list[dict]]:
    """The `live_frames` field and its HL1012 warnings, from what the stop `found` among the
    old copies of `owners` (live_frames.py); `main` is left to its HL1010 in `warnings`."""
    return live_frames.report(
        crate_dir,
        new,
        owners,
        found,
        {w["symbol"] for w in warnings if w["rule"] == "HL1010" and "symbol" in w},
        _unlooked(channel, sent),
    )


def _unlooked(channel: PatchChannel, sent: list) -> str:
    """Why no stop looked at the threads' stacks for live frames (when none did)."""
    if not sent and channel.stop_mode == "signal":
        return "no entry jump was written and the quiet stop is unavailable, so no thread was stopped"
    if channel.stop_mode == "signal":
        why = f" ({channel.stop_fallback})" if channel.stop_fallback else ""
        return f"the signal stop was used{why}: it sees no thread's stack"
    return "the threads' stacks could not be read"
