"""Finds where a crate's items are defined in its sources, for messages and code lenses.

rustc's debug info gives functions a declaration line but not structs and enums, so
types are found by their declaration in the crate's `.rs` files, preferring the file
that matches the item's module path.
"""

from __future__ import annotations

import re
from pathlib import Path

_KEYWORDS = {"struct", "enum", "union", "fn", "static", "trait", "type"}


def locate(crate_dir: Path, qualified: str, keyword: str) -> tuple[str, int] | None:
    """(path relative to `crate_dir`, 1-based line) of `keyword <last segment>`, if found."""
    assert keyword in _KEYWORDS
    segments = [s for s in qualified.split("::") if not s.startswith("{")]
    if not segments:
        return None
    name = segments[-1]
    pattern = re.compile(rf"^\s*(pub(\([^)]*\))?\s+)?{keyword}\s+{re.escape(name)}\b")
    modules = segments[1:-1]
    files = sorted((crate_dir / "src").rglob("*.rs"))
    files.sort(key=lambda p: -sum(m in p.stem or m in p.parent.name for m in modules))
    for path in files:
        for i, line in enumerate(path.read_text(errors="replace").splitlines()):
            if pattern.match(line):
                return str(path.relative_to(crate_dir)), i + 1
    return None
