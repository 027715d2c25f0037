"""Maps patched function names to source lines.

Good enough for now: a demangled path like ``counter::greeting`` is reduced to its last path segment
(``greeting``) and found by scanning the Rust source for ``fn greeting``. Module paths, impl blocks and
same-named functions in one file are not told apart (the first match wins).
"""

from __future__ import annotations

import difflib
import re
from functools import cache

_HASH = re.compile(r"::h[0-9a-f]{16}$")


def last_segment(demangled: str) -> str | None:
    """``counter::World::step`` -> ``step``; closures map to their enclosing function."""
    name = _HASH.sub("", demangled)
    name = re.sub(r"<[^<>]*>", "", name)  # generic args and <T as Trait> qualifiers (one level at a time)
    name = re.sub(r"<[^<>]*>", "", name)
    parts = [p for p in name.split("::") if p and not p.startswith("{")]
    for part in reversed(parts):
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", part):
            return part
    return None


@cache
def _fn_pattern(name: str) -> re.Pattern:
    return re.compile(
        r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:default\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?"
        r'(?:extern\s+(?:"[^"]*"\s+)?)?fn\s+' + re.escape(name) + r"\b"
    )


def fn_line(source: str, name: str) -> int | None:
    """0-based line of the first ``fn name`` in source."""
    pattern = _fn_pattern(name)
    for i, line in enumerate(source.splitlines()):
        if pattern.match(line):
            return i
    return None


def function_lines(source: str, functions: list[str]) -> dict[int, list[str]]:
    """0-based line -> the patched functions defined on it, for the functions found in source."""
    out: dict[int, list[str]] = {}
    for function in functions:
        name = last_segment(function)
        if name is None:
            continue
        line = fn_line(source, name)
        if line is not None and function not in out.get(line, []):
            out.setdefault(line, []).append(function)
    return out


# -- the words the editors show (README.md, vscode-extension/README.md, nvim/doc/hotline.txt) --
RUN = "▶ Run with Hotline"
RUN_TOOLTIP = "Build the app and run it under Hotline"
REBUILD = "⟳ Full rebuild"
REBUILD_TOOLTIP = "Stop the app, rebuild it fully and run it again"
PATCHED_TOOLTIP = "Show what the last patch changed"
RESTART_REQUIRED_TOOLTIP = "Click to restart the app (full rebuild): {message}"
REFUSED_TOOLTIP = "The app keeps running its last good code. Click to show the details: {reason}"
# what a rule that requires a restart is about, in a lens's few words (docs/rude-edits.md)
RULE_SUBJECTS = {
    "HL1001": "closure captures changed",
    "HL1002": "layout change",
    "HL1003": "new thread-local",
    "HL1004": "static type changed",
    "HL1006": "build inputs changed",
}


LIVE_FRAME_TOOLTIP = (
    "{function} is running on thread {thread} (tid {tid}) and has not returned: its loop keeps the "
    "old code until it returns (HL1012). Click to restart the app and run the new code"
)


def live_frame_title(frame: dict) -> str:
    """`⚠ still running old code on thread worker-1 (HL1012)`."""
    return f"⚠ still running old code on thread {frame['thread']} (HL1012)"


def live_frame_lines(source: str, frames: list[dict]) -> list[tuple[int, dict]]:
    """(0-based line, frame) of each live frame's function found in source."""
    out = []
    for frame in frames:
        name = last_segment(frame["function"])
        line = fn_line(source, name) if name else None
        if line is not None:
            out.append((line, frame))
    return out


def live_status(event: dict) -> str | None:
    """The status bar's word on a patch that left old code running (HL1012), or whose
    entry jumps are pending; None when there is none."""
    frames = (event.get("live_frames") or {}).get("frames") or []
    pending = (event.get("pending_jumps") or {}).get("pending") or []
    parts = [f"{f['function']} still runs old code on thread {f['thread']} (HL1012)" for f in frames[:2]]
    if pending:
        parts.append(f"entry jumps pending: {', '.join(pending[:2])}")
    return "; ".join(parts) or None


def patched_title(ms: float, receipts: list[str] | None = None) -> str:
    """`patched in 62ms`, with the receipt of the functions on the line (receipts.py):
    ` · ran` once all ran since the patch, ` · not called since the patch` when one was
    reported not run (HL1013); nothing while they are pending."""
    title = f"patched in {ms:.0f}ms"
    if receipts and "not-run" in receipts:
        return title + " · not called since the patch"
    if receipts and all(r == "ran" for r in receipts):
        return title + " · ran"
    return title


NOT_RUN_TOOLTIP = "{message}. Click to restart the app and run the new code"


def not_run_status(functions: list[str]) -> str | None:
    """The status bar's word on edited functions not called since their patch (HL1013)."""
    if not functions:
        return None
    more = f" and {len(functions) - 1} more" if len(functions) > 1 else ""
    return f"{functions[0]}{more} not called since the patch (HL1013): restart to apply"


def restart_required_title(rule: str) -> str:
    """`⚠ restart required (HL1002): layout change`."""
    subject = RULE_SUBJECTS.get(rule)
    return f"⚠ restart required ({rule})" + (f": {subject}" if subject else "")


def refused_title(rule: str, reason: str) -> str:
    """`⚠ patch refused (HL1098): the patch region is full: restart the app`."""
    return f"⚠ patch refused ({rule}): {reason}"


def follow_lines(before: str, after: str, lines: list[int]) -> dict[int, int]:
    """Where 0-based `lines` of `before` are in `after` (edits in between: lines inserted or
    deleted above them); a line that was itself changed or deleted is left out."""
    if before == after:
        return {line: line for line in lines}
    old, new = before.splitlines(), after.splitlines()
    out: dict[int, int] = {}
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for tag, i1, i2, j1, _j2 in matcher.get_opcodes():
        if tag == "equal":
            for line in lines:
                if i1 <= line < i2:
                    out[line] = j1 + line - i1
    return out


def relocate(before: str, after: str, located: dict[int, list[str]]) -> dict[int, list[str]]:
    """Patched functions' declaration lines in `before` (the saved text that was patched)
    -> their lines in `after` (the editor's current text): followed through the edits, else
    found again by name (the nearest `fn name`); dropped when the function is gone."""
    moved = follow_lines(before, after, list(located))
    out: dict[int, list[str]] = {}
    lines = after.splitlines()
    for line, functions in located.items():
        for function in functions:
            name = last_segment(function)
            target = moved.get(line)  # the same line, unchanged, maybe elsewhere
            if target is None and name is not None:
                pattern = _fn_pattern(name)
                found = [i for i, text in enumerate(lines) if pattern.match(text)]
                target = min(found, key=lambda i: abs(i - line)) if found else None
            if target is not None and function not in out.get(target, []):
                out.setdefault(target, []).append(function)
    return out
