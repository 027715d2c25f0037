"""The runtime as a library the engine preloads into an app that does not link it.

An app needs no Hotline dependency: when its executable has no `hotline_aslr_anchor`, the
engine builds `runtime/inject` (a cdylib around the runtime crate, std only) once per
toolchain and runtime version, caches it in `~/.cache/hotline/runtime-<key>/` (outside the
user's tree), and launches the app with `LD_PRELOAD` naming it. The library's constructor
connects like the linked runtime does, says `"mode": "injected"` and reports the
executable's load bias. It also removes its `LD_PRELOAD` entry (named by `HOTLINE_PRELOAD`)
and the channel settings from the environment, so the app's children are never injected.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from hotline import RUNTIME_DIR

LIBRARY = "libhotline_inject.so"
#: What the library is built from: the runtime crate and its cdylib wrapper.
SOURCES = ("Cargo.toml", "src", "inject/Cargo.toml", "inject/lib.rs")


class PreloadError(Exception):
    """The injected runtime could not be built; the message says why and what to do."""


def cache_root() -> Path:
    """`HOTLINE_CACHE_DIR`, else `$XDG_CACHE_HOME/hotline`, else `~/.cache/hotline`."""
    if os.environ.get("HOTLINE_CACHE_DIR"):
        return Path(os.environ["HOTLINE_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hotline"


def _source_files() -> list[Path]:
    files: list[Path] = []
    for name in SOURCES:
        path = RUNTIME_DIR / name
        files += sorted(path.rglob("*.rs")) if path.is_dir() else [path]
    return files


def _key() -> str:
    """One library per toolchain (`rustc -vV`) and runtime source."""
    try:
        rustc = subprocess.run(["rustc", "-vV"], capture_output=True, text=True, cwd=RUNTIME_DIR)
    except FileNotFoundError as e:
        raise PreloadError("rustc was not found on PATH: install Rust with rustup (https://rustup.rs)") from e
    if rustc.returncode != 0:
        raise PreloadError(f"`rustc -vV` failed: {rustc.stderr.strip()}")
    digest = hashlib.sha256(rustc.stdout.encode())
    for file in _source_files():
        digest.update(str(file.relative_to(RUNTIME_DIR)).encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()[:16]


def preload_env(library: Path, inherited: str | None) -> dict[str, str]:
    """The variables that preload `library` (after any the user preloads already)."""
    entry = str(library)
    return {"LD_PRELOAD": f"{inherited} {entry}" if inherited else entry, "HOTLINE_PRELOAD": entry}


def preload_library(on_event: Callable[[dict], None]) -> Path:
    """The injected runtime library, built first if this toolchain has none yet."""
    folder = cache_root() / f"runtime-{_key()}"
    library = folder / LIBRARY
    if library.exists():
        return library
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another engine may be building it right now
        if not library.exists():
            _build(folder, library, on_event)
    return library


def _build(folder: Path, library: Path, on_event: Callable[[dict], None]) -> None:
    started = time.perf_counter()
    on_event({"event": "runtime-build-started", "directory": str(folder)})
    # Built from a copy: the runtime's own folder may be read-only (an installed package)
    # and cargo writes a Cargo.lock next to the manifest.
    source = folder / "source"
    shutil.rmtree(source, ignore_errors=True)
    for file in _source_files():
        target = source / file.relative_to(RUNTIME_DIR)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(file, target)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("CARGO_TARGET_DIR", "RUSTC_WORKSPACE_WRAPPER", "CARGO_BUILD_TARGET")
        and not k.startswith("HOTLINE_")
    }
    cmd = ["cargo", "build", "--quiet", "--target-dir", str(folder / "target")]
    try:
        proc = subprocess.run(cmd, cwd=source / "inject", env=env, capture_output=True, text=True)
    except FileNotFoundError as e:
        raise PreloadError("cargo was not found on PATH: install Rust with rustup (https://rustup.rs)") from e
    built = folder / "target" / "debug" / LIBRARY
    if proc.returncode != 0 or not built.exists():
        tail = "\n".join(proc.stderr.strip().splitlines()[-20:])
        on_event({"event": "runtime-build-finished", "ok": False, "ms": _ms(started)})
        raise PreloadError(
            f"building the injected runtime (`{' '.join(cmd)}` in {source / 'inject'}) failed:\n{tail}\n"
            "Fix the toolchain, or make the app depend on the runtime crate instead "
            '(README, "Use"): then nothing is preloaded.'
        )
    partial = library.with_suffix(".partial")
    shutil.copyfile(built, partial)
    partial.replace(library)  # atomically: a concurrent reader sees the whole library or none
    on_event({"event": "runtime-build-finished", "ok": True, "ms": _ms(started), "library": str(library)})


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)
