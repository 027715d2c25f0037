"""Maps patched function names to source lines.

Good enough for now: a demangled path like ``counter::greeting`` is reduced to its last path segment
(``greeting``) and found by scanning the Rust source for ``fn greeting``. Module paths, impl blocks and
same-named functions in one file are not told apart (the first match wins).
"""

from __future__ import annotations

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
