"""Entry points cargo and rustc call during a fat build, recording how to rebuild later.

`rustc` is installed as RUSTC_WORKSPACE_WRAPPER: it records each workspace crate's
rustc command (arguments, environment, working directory) and points its linker at our
shim. `link` is that shim in a fat build: it records the link command and links an
executable that keeps every symbol. In a thin build the shell shim only copies the
crate's fresh object files (see `shims.write_shims`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path


def _capture_dir() -> Path:
    return Path(os.environ["HOTLINE_CAPTURE_DIR"])


def _crate_key(args: list[str]) -> str | None:
    if "--crate-name" not in args:
        return None
    name = args[args.index("--crate-name") + 1]
    kind = args[args.index("--crate-type") + 1] if "--crate-type" in args else "lib"
    return f"{name}.{kind}"


RUNTIME_RLIB = "runtime-rlib"  # in the capture folder: the runtime library the binary depends on


def _runtime_rlib(args: list[str]) -> str | None:
    """The hotline runtime's rlib among the crate's `--extern`s (its lib is named hotline)."""
    for i, a in enumerate(args[:-1]):
        if a == "--extern":
            path = args[i + 1].partition("=")[2]
            if Path(path).name.startswith("libhotline-") and path.endswith(".rlib"):
                return path
    return None


def wrap_rustc(argv: list[str]) -> int:
    rustc, args = argv[0], argv[1:]
    key = _crate_key(args)
    if key is not None and "-" not in args:
        args += ["-C", "link-dead-code"]
        if key.endswith(".bin"):
            args += ["-C", f"linker={_capture_dir() / 'hotline-link'}"]
            runtime = _runtime_rlib(args)
            (_capture_dir() / RUNTIME_RLIB).write_text(runtime or "")
        record = {"rustc": rustc, "args": args, "cwd": os.getcwd(), "env": dict(os.environ)}
        out = _capture_dir() / "rustc"
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{key}.json").write_text(json.dumps(record))
    os.execv(rustc, [rustc, *args])  # exec keeps cargo's jobserver descriptors open
    return 1


def fat_link_args(args: list[str], linker: str | None = None) -> list[str]:
    """Keeps every symbol: whole archives, no section GC, nothing stripped; `linker` picks
    the linker flavour (`-fuse-ld=`) instead of rustc's choice."""
    out: list[str] = []
    for a in args:
        if linker and (a.startswith("-fuse-ld=") or (a.startswith("-B") and a.endswith("gcc-ld"))):
            continue
        if a in ("-Wl,--gc-sections", "-Wl,--strip-debug", "-Wl,--strip-all", "-s"):
            continue
        if a.endswith(".rlib") and "compiler_builtins" not in a:
            out += ["-Wl,--whole-archive", a, "-Wl,--no-whole-archive"]
        else:
            out.append(a)
    out += ["-Wl,--no-gc-sections", "-Wl,--allow-multiple-definition"]
    return out + ([f"-fuse-ld={linker}"] if linker else [])


def keep_objects(args: list[str], dest: Path) -> None:
    """Keeps the crate's own objects: the baseline the first thin build is diffed against.

    Hard links where possible: rustc's incremental cache holds the same files, and the
    object cache knows a file by its inode, so the first save reads only what it changed."""
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for a in args:
        if a.endswith(".rcgu.o"):
            try:
                os.link(a, dest / Path(a).name)
            except OSError:  # another file system, say
                shutil.copy(a, dest / Path(a).name)


def with_runtime(args: list[str]) -> list[str]:
    """Adds the runtime's rlib when rustc left it out: a crate whose source never names
    `hotline` is not linked, yet depending on the runtime is all an app should need."""
    note = _capture_dir() / RUNTIME_RLIB
    runtime = note.read_text() if note.exists() else ""
    if not runtime or any(Path(a).name == Path(runtime).name for a in args):
        return args
    return [*args, runtime]


def link(argv: list[str]) -> int:
    keep_objects(argv, _capture_dir() / "objects")
    args = fat_link_args(with_runtime(argv), os.environ.get("HOTLINE_LINKER"))
    linker = os.environ.get("HOTLINE_REAL_LINKER", "cc")
    (_capture_dir() / "link.json").write_text(
        json.dumps({"linker": linker, "args": argv, "cwd": os.getcwd()})
    )
    return subprocess.call([linker, *args], close_fds=False)


def main() -> None:
    mode, rest = sys.argv[1], sys.argv[2:]
    sys.exit(wrap_rustc(rest) if mode == "rustc" else link(rest))


if __name__ == "__main__":
    main()
