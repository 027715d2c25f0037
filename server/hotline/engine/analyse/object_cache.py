"""Parsed objects, function fingerprints and type layouts, reused across builds by content.

rustc's incremental mode re-emits unchanged codegen units byte for byte, so after the
first build only the objects of the edited codegen units are parsed and analysed.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hotline.engine.analyse.function_abi import AbiIndex, FunctionAbi
from hotline.engine.analyse.inlined_functions import inlined_functions
from hotline.engine.analyse.object_diff import fingerprints
from hotline.engine.analyse.references import referenced_functions
from hotline.engine.analyse.type_layouts import CrateLayouts, crate_layouts
from hotline.engine.link.elf_objects import ObjectFile, read_object


@dataclass
class _Entry:
    obj: ObjectFile
    prints: dict[str, bytes]
    layouts: dict[str, CrateLayouts] = field(default_factory=dict)  # by crate name
    analyses: dict[str, dict] = field(default_factory=dict)  # by analysis name
    abis: AbiIndex | None = None  # read the first time one of its functions is asked for


@dataclass
class Build:
    """One build of a crate, as objects."""

    objects: list[ObjectFile]
    fingerprints: dict[str, bytes]
    _entries: list[_Entry]
    _merged: dict[str, CrateLayouts] = field(default_factory=dict)

    def merged(self, name: str, analyse: Callable[[ObjectFile], dict]) -> dict:
        """`analyse(object)` for every object, each computed once per object, merged (first wins)."""
        out: dict = {}
        for e in self._entries:
            if name not in e.analyses:
                e.analyses[name] = analyse(e.obj)
            for key, value in e.analyses[name].items():
                out.setdefault(key, value)
        return out

    def abi(self, symbol: str) -> FunctionAbi | None:
        """What callers see of the function `symbol` defined in this build (function_abi.py)."""
        index = self._functions_of(symbol)
        return index.abi(symbol) if index else None

    def referenced(self) -> dict[str, bool]:
        """The functions this build's code and data refer to (references.py), as dict keys."""
        return self.merged("referenced", lambda obj: dict.fromkeys(referenced_functions(obj), True))

    def inlined(self, symbol: str) -> set[str]:
        """The functions inlined into `symbol`'s copy in this build (inlined_functions.py)."""
        index = self._functions_of(symbol)
        return inlined_functions(index.functions, symbol) if index else set()

    def _functions_of(self, symbol: str) -> AbiIndex | None:
        """The function entries of the object that defines `symbol`, read on first use."""
        for e in self._entries:
            if symbol in e.prints:
                if e.abis is None:
                    e.abis = AbiIndex(e.obj)
                return e.abis
        return None

    def layouts(self, crate: str) -> CrateLayouts:
        """The crate's type layouts, merged over every object (each object parsed once)."""
        if crate in self._merged:
            return self._merged[crate]
        merged = CrateLayouts({}, set())
        for e in self._entries:
            if crate not in e.layouts:
                e.layouts[crate] = crate_layouts([e.obj], crate)
            for name, layout in e.layouts[crate].types.items():
                merged.types.setdefault(name, layout)
            merged.hot_closures |= e.layouts[crate].hot_closures
            for symbol, where in e.layouts[crate].functions.items():
                merged.functions.setdefault(symbol, where)
            for symbol, signature in e.layouts[crate].signatures.items():
                merged.signatures.setdefault(symbol, signature)
        self._merged[crate] = merged
        return merged


class ObjectCache:
    def __init__(self) -> None:
        self._by_digest: dict[bytes, _Entry] = {}
        self._by_file: dict[tuple[int, int, int, int], _Entry] = {}

    def load(self, folder: Path) -> Build:
        """The crate's objects in `folder`, analysed, reusing what an earlier build analysed."""
        entries: list[_Entry] = []
        prints: dict[str, bytes] = {}
        with os.scandir(folder) as found:
            files = sorted((f for f in found if f.name.endswith(".rcgu.o")), key=lambda f: f.name)
        for file in files:
            # The file's identity stands for its contents, unread: rustc hard-links reused
            # codegen units from its incremental cache, so their inode and mtime stay the same.
            st = file.stat()
            key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
            entry = self._by_file.get(key)
            if entry is None:
                path = Path(file.path)
                raw = path.read_bytes()
                digest = hashlib.blake2b(raw, digest_size=16).digest()
                entry = self._by_digest.get(digest)
                if entry is None:
                    obj = read_object(path, raw)
                    entry = _Entry(obj, fingerprints([obj]))
                    self._by_digest[digest] = entry
                self._by_file[key] = entry
            entries.append(entry)
            for name, fp in entry.prints.items():
                prints.setdefault(name, fp)
        return Build([e.obj for e in entries], prints, entries)

    def forget_all_but(self, *builds: Build) -> None:
        """Drops cached entries no kept build uses (after a patch applied or was refused)."""
        keep = {id(e) for b in builds for e in b._entries}
        self._by_digest = {d: e for d, e in self._by_digest.items() if id(e) in keep}
        self._by_file = {k: e for k, e in self._by_file.items() if id(e) in keep}
