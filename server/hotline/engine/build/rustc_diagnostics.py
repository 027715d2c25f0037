"""rustc's JSON diagnostics, as a save's replay or a speculative build leaves them on stderr."""

from __future__ import annotations

import json


def diagnostics(stderr_lines: list[str]) -> list[dict]:
    """rustc's JSON diagnostics (errors and warnings) from its stderr."""
    out = []
    for line in stderr_lines:
        if not line.startswith("{"):
            continue
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("$message_type") == "diagnostic" and msg.get("level") in ("error", "warning"):
            out.append(msg)
    return out


def error_count(diagnostics: list[dict]) -> int:
    """rustc's errors, without its closing "aborting due to N previous errors" (no span)."""
    return sum(
        1
        for d in diagnostics
        if d.get("level", "").startswith("error") and not d.get("message", "").startswith("aborting due to ")
    )
