"""Parsed objects and their function fingerprints, reused across builds by content.

rustc's incremental mode re-emits unchanged codegen units byte for byte, so after the
first build only the objects of the edited codegen units are parsed and fingerprinted.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from hotline.engine.elf_objects import ObjectFile, read_object
from hotline.engine.object_diff import fingerprints

_Entry = tuple[ObjectFile, dict[str, bytes]]


class ObjectCache:
    def __init__(self) -> None:
        self._by_digest: dict[bytes, _Entry] = {}
        self.last_parsed = 0

    def load(self, folder: Path) -> tuple[list[ObjectFile], dict[str, bytes]]:
        """The crate's objects in `folder` and the fingerprint of every function they define."""
        current: dict[bytes, _Entry] = {}
        objects: list[ObjectFile] = []
        prints: dict[str, bytes] = {}
        self.last_parsed = 0
        for path in sorted(folder.glob("*.rcgu.o")):
            raw = path.read_bytes()
            digest = hashlib.blake2b(raw, digest_size=16).digest()
            entry = self._by_digest.get(digest) or current.get(digest)
            if entry is None:
                obj = read_object(path, raw)
                entry = (obj, fingerprints([obj]))
                self.last_parsed += 1
            current[digest] = entry
            objects.append(entry[0])
            for name, fp in entry[1].items():
                prints.setdefault(name, fp)
        self._by_digest = current
        return objects, prints
