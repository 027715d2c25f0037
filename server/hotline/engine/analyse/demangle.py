"""Readable names for Rust symbols (legacy and v0 mangling), without the hash suffix."""

from __future__ import annotations

import re
from functools import cache

import rust_demangler

_HASH = re.compile(r"::h[0-9a-f]{16}$")


@cache
def demangle(symbol: str) -> str:
    try:
        name = rust_demangler.demangle(symbol)
    except Exception:  # not a Rust symbol (C, or a form the demangler does not know)
        return symbol
    return _HASH.sub("", name)
