"""Hotline: save-to-patch hot reloading for Rust."""

from pathlib import Path

#: The repository root (schemas/, runtime/, examples/ live there).
REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_DIR = REPO_ROOT / "schemas"
RUNTIME_DIR = REPO_ROOT / "runtime"
