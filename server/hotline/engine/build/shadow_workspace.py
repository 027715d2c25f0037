"""The shadow of the workspace that speculative builds run in (`target/hotline/shadow/<root>`):
the crates' source files mirrored from disk, the unsaved ones written with the editor's
text. Its outputs (`shadow-out`) and incremental cache (`shadow-incremental`) are its own;
the user's files, rlibs and executable are never written, but by a save that adopts a
build's outputs (`adopt`).

What a build read is known by digest (`key`), so that a save uses it only for exactly the
files on disk.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from pathlib import Path

from hotline.engine.build.workspace import Crate, depinfo_entries


def digest_of(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def file_digest(path: Path) -> bytes | None:
    try:
        return digest_of(path.read_bytes())
    except OSError:
        return None


def read_text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


class ShadowWorkspace:
    """The shadow of the workspace at `root`, in `target_dir`, mirrored anew for each build."""

    def __init__(self, target_dir: Path, root: Path) -> None:
        self.root = root
        self.folder = target_dir / "shadow" / root.name
        self.out_dir = target_dir / "shadow-out"
        self.incremental = target_dir / "shadow-incremental"
        # real path -> (size, mtime, digest) of the disk file last copied into the shadow
        self._mirrored: dict[Path, tuple[int, int, bytes]] = {}

    def path_of(self, real: Path) -> Path:
        """Where the file or folder at `real`, in the workspace, lies in the shadow."""
        return self.folder / real.relative_to(self.root)

    def mirror(self, chain: list[Crate], overlays: dict[Path, bytes]) -> dict[Path, bytes] | None:
        """Brings the shadow up to date: disk files copied when their size or mtime
        changed, overlays written. Returns the digest of each file rustc may read (None if
        one would lie outside the shadow)."""
        prepared: dict[Path, bytes] = {}
        for crate in chain:
            walked = self._mirror_folder(crate.source_folder, overlays)
            cwd = Path(crate.record["cwd"]).resolve()
            for entry in depinfo_entries(read_text(crate.out_dir / f"{crate.stem}.d")):
                real = Path(os.path.normpath(cwd / entry))
                if Path(entry).is_absolute():  # read in place by the shadow build too
                    digest = file_digest(real)
                    if digest is not None:
                        prepared[real] = digest
                    continue
                if not real.is_relative_to(self.root):
                    return None
                if real in overlays:
                    prepared[real] = digest_of(overlays[real])
                    continue
                digest = walked[real] if real in walked else self._mirror_file(real)
                if digest is not None:
                    prepared[real] = digest
        for real, text in overlays.items():  # a new module's is not prepared: it may go unread
            shadow = self.path_of(real)
            shadow.parent.mkdir(parents=True, exist_ok=True)
            shadow.write_bytes(text)
            self._mirrored.pop(real, None)  # refreshed from disk once no longer overlaid
        return prepared

    def _mirror_folder(self, folder: Path | None, overlays: dict[Path, bytes]) -> dict[Path, bytes | None]:
        """The `.rs` files of a crate's source folder mirrored too, though its last build
        did not read them: a `mod` line typed since may (the dep-info then says so, and the
        build's key has them). Their digests, by real path."""
        walked: dict[Path, bytes | None] = {}
        if folder is None or not folder.is_relative_to(self.root):
            return walked
        for parent, dirs, files in os.walk(folder):
            dirs[:] = [d for d in dirs if d != "target" and not d.startswith(".")]
            for name in files:
                real = Path(parent) / name
                if name.endswith(".rs") and real not in overlays:
                    walked[real] = self._mirror_file(real)
        return walked

    def _mirror_file(self, real: Path) -> bytes | None:
        """The disk file copied into the shadow if it changed since the last copy (a file
        gone is gone from the shadow too): its digest."""
        shadow = self.path_of(real)
        try:
            st = real.stat()
        except OSError:
            shadow.unlink(missing_ok=True)
            self._mirrored.pop(real, None)
            return None
        known = self._mirrored.get(real)
        if known is None or known[:2] != (st.st_size, st.st_mtime_ns) or not shadow.exists():
            data = real.read_bytes()  # after the stat: a newer file is copied again next time
            shadow.parent.mkdir(parents=True, exist_ok=True)
            shadow.write_bytes(data)
            known = self._mirrored[real] = (st.st_size, st.st_mtime_ns, digest_of(data))
        return known[2]

    def key(self, crate: Crate, depinfo: str, prepared: dict[Path, bytes]) -> dict[Path, bytes] | None:
        """Digest of every file the crate's build read (its dep-info), or None if it read a
        file whose contents cannot be vouched for. `depinfo` is the one its shadow build wrote."""
        cwd = self.path_of(Path(crate.record["cwd"]).resolve())
        key: dict[Path, bytes] = {}
        for entry in depinfo_entries(depinfo):
            path = Path(os.path.normpath(cwd / entry))
            if path.is_relative_to(self.folder):
                real = self.root / path.relative_to(self.folder)
                digest = prepared.get(real) or file_digest(path)  # a stale mirrored file
            else:  # read in place: it must not have changed while rustc ran
                real, digest = path, file_digest(path)
                if digest is None or prepared.get(real) != digest:
                    return None
            if digest is None:
                return None
            key[real] = digest
        return key

    def adopt(self, crate: Crate, depinfo: str) -> None:
        """The crate's outputs become the speculative build's, as a save build's replay
        would have written them: a library's rlib and metadata, which later builds of the
        crates after it link, and the dep-info in real paths, which lists the files the
        running code was compiled from (`Crate.sources`). Copied: the shadow keeps its own."""
        if crate.kind != "bin":
            for name in (f"lib{crate.stem}.rlib", f"lib{crate.stem}.rmeta"):
                if (self.out_dir / name).exists():
                    temp = crate.out_dir / f"{name}.speculative"
                    shutil.copyfile(self.out_dir / name, temp)
                    temp.replace(crate.out_dir / name)
        text = depinfo.replace(str(self.out_dir), str(crate.out_dir)).replace(
            str(self.folder), str(self.root)
        )
        with contextlib.suppress(OSError):
            temp = crate.out_dir / f"{crate.stem}.d.speculative"
            temp.write_text(text)
            temp.replace(crate.out_dir / f"{crate.stem}.d")
