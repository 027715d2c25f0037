"""Which saved files `hotline run` acts on, and what a save of them asks for (a patch or a restart)."""

from __future__ import annotations

from pathlib import Path

from hotline.engine.session import RESTART_FILES


def classify(changes: set[tuple[object, str]]) -> str | None:
    """'restart' for manifest/build-script edits, else 'patch' (only watched files come here)."""
    names = {Path(p).name for _, p in changes}
    if names & set(RESTART_FILES):
        return "restart"
    return "patch" if names else None  # Rust sources, and files the build read


def fixable_by_a_save(diagnostics: list[dict]) -> bool:
    """An error at a line of a file hotline watches: Rust source, or Cargo.toml (where the
    engine puts its refusal of a profile without debug info). A save there can fix it."""
    return any(
        d.get("level") == "error" and any(watched(span["file_name"]) for span in d.get("spans") or [])
        for d in diagnostics
    )


def error_files(diagnostics: list[dict]) -> set[Path]:
    """The watched files rustc's errors point at (relative to the workspace root, as cargo runs rustc)."""
    return {
        Path(span["file_name"])
        for d in diagnostics
        if d.get("level") == "error"
        for span in d.get("spans") or []
        if watched(span["file_name"])
    }


def watched(path: str) -> bool:
    """A file whose save hotline acts on (a patch, or a rebuild for the manifest)."""
    p = Path(path)
    return "target" not in p.parts and (p.suffix == ".rs" or p.name in RESTART_FILES)
