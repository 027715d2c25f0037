"""Parsed objects, function fingerprints and type layouts, reused across builds by content.

rustc's incremental mode re-emits unchanged codegen units byte for byte, so after the
first build only the objects of the edited codegen units are parsed and analysed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from hotline.engine.elf_objects import ObjectFile, read_object
from hotline.engine.object_diff import fingerprints
from hotline.engine.type_layouts import CrateLayouts, crate_layouts


@dataclass
class _Entry:
    obj: ObjectFile
    raw: bytes
    prints: dict[str, bytes]
    layouts: dict[str, CrateLayouts] = field(default_factory=dict)  # by crate name


@dataclass
class Build:
    """One build of a crate, as objects."""

    objects: list[ObjectFile]
    fingerprints: dict[str, bytes]
    _entries: list[_Entry]

    def layouts(self, crate: str) -> CrateLayouts:
        """The crate's type layouts, merged over every object (parsed once per object)."""
        merged = CrateLayouts({}, set())
        for e in self._entries:
            if crate not in e.layouts:
                e.layouts[crate] = crate_layouts([(e.obj, e.raw)], crate)
            for name, layout in e.layouts[crate].types.items():
                merged.types.setdefault(name, layout)
            merged.hot_closures |= e.layouts[crate].hot_closures
            for symbol, where in e.layouts[crate].functions.items():
                merged.functions.setdefault(symbol, where)
        return merged


class ObjectCache:
    def __init__(self) -> None:
        self._by_digest: dict[bytes, _Entry] = {}
        self.last_parsed = 0

    def load(self, folder: Path) -> Build:
        """The crate's objects in `folder`, analysed, reusing what an earlier build analysed."""
        current: dict[bytes, _Entry] = {}
        entries: list[_Entry] = []
        prints: dict[str, bytes] = {}
        self.last_parsed = 0
        for path in sorted(folder.glob("*.rcgu.o")):
            raw = path.read_bytes()
            digest = hashlib.blake2b(raw, digest_size=16).digest()
            entry = self._by_digest.get(digest) or current.get(digest)
            if entry is None:
                obj = read_object(path, raw)
                entry = _Entry(obj, raw, fingerprints([obj]))
                self.last_parsed += 1
            current[digest] = entry
            entries.append(entry)
            for name, fp in entry.prints.items():
                prints.setdefault(name, fp)
        self._by_digest |= current
        return Build([e.obj for e in entries], prints, entries)

    def forget_all_but(self, *builds: Build) -> None:
        """Drops cached entries no kept build uses (after a patch applied or was refused)."""
        keep = {id(e) for b in builds for e in b._entries}
        self._by_digest = {d: e for d, e in self._by_digest.items() if id(e) in keep}
