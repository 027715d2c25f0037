"""Copies of the bundled apps for tests and benchmarks, wired to this checkout's runtime."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from hotline import REPO_ROOT, RUNTIME_DIR

APPS = {
    "counter": REPO_ROOT / "examples" / "counter",
    "http": REPO_ROOT / "examples" / "http",
    "probe": REPO_ROOT / "tests" / "apps" / "probe",
    "scope": REPO_ROOT / "tests" / "apps" / "scope",
    "workspace": REPO_ROOT / "tests" / "apps" / "workspace",
    "features": REPO_ROOT / "tests" / "apps" / "features",
    "jumps": REPO_ROOT / "tests" / "apps" / "jumps",
    "stop_matrix": REPO_ROOT / "tests" / "apps" / "stop_matrix",
    "live_loops": REPO_ROOT / "tests" / "apps" / "live_loops",
    "stress": REPO_ROOT / "tests" / "apps" / "stress",
    "debuggable": REPO_ROOT / "tests" / "apps" / "debuggable",
    "twobins": REPO_ROOT / "tests" / "apps" / "twobins",
    "plain": REPO_ROOT / "tests" / "apps" / "plain",
    "abi_shapes": REPO_ROOT / "tests" / "apps" / "abi_shapes",
    "inlined": REPO_ROOT / "tests" / "apps" / "inlined",
    "cli_ticker": REPO_ROOT / "tests" / "apps" / "cli_ticker",
    "shape_package": REPO_ROOT / "tests" / "apps" / "shape_package",
    "shape_workspace": REPO_ROOT / "tests" / "apps" / "shape_workspace",
    "axum-server": REPO_ROOT / "examples" / "axum-server",
    "tui": REPO_ROOT / "examples" / "tui",
    "web-service": REPO_ROOT / "examples" / "web-service",
    "bevy": REPO_ROOT / "examples" / "bevy",
}


def copy_app(name: str, dest: Path) -> Path:
    """A copy of a bundled app whose `hotline` dependency points at this checkout's runtime."""
    target = dest / name
    shutil.copytree(APPS[name], target, ignore=shutil.ignore_patterns("target"), copy_function=shutil.copy)
    for manifest in target.rglob("Cargo.toml"):
        manifest.write_text(re.sub(r'path = "[./]*runtime"', f'path = "{RUNTIME_DIR}"', manifest.read_text()))
    return target
