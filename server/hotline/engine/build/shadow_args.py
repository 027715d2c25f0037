"""The captured rustc arguments of a crate, rewritten to compile it in the shadow of the
workspace (shadow_workspace.py) as a save build would, without writing anything of the user's.

Every output goes to the shadow's own folder and incremental cache. `--remap-path-prefix`
maps the shadow back to the real root, and relative source paths (`src/main.rs`) stay as
cargo gave them, so panic Locations, debug info and diagnostics are those of a save build,
byte for byte.

The incremental cache cannot be shared with save builds: the working directory and
`--remap-path-prefix` are tracked options, and rustc discards a cache made with other
ones ("completely ignoring cache because of differing commandline arguments").

A crate after a library the chain rebuilds links the shadow's new rlib (`--extern` pointed
there, the shadow's outputs searched too): rustc's crate-hash check skips the real rlib,
whose hash is older, and takes either of two copies that are the same.
"""

from __future__ import annotations

from pathlib import Path


def remapped(path: Path, args: list[str]) -> Path:
    """`path` as the crate's own `--remap-path-prefix` options show it (the last match wins)."""
    maps = [
        a.split("=", 1)[1] if a.startswith("--remap-path-prefix=") else args[i + 1]
        for i, a in enumerate(args)
        if a.startswith("--remap-path-prefix=") or (a == "--remap-path-prefix" and i + 1 < len(args))
    ]
    for mapping in reversed(maps):
        frm, _, to = mapping.partition("=")
        if path.is_relative_to(frm):
            return Path(to) / path.relative_to(frm)
    return path


def shadow_args(args: list[str], out_dir: Path, incremental: Path, remap: str) -> list[str]:
    """The captured arguments with every output moved into `out_dir` (`--out-dir`, `-o`,
    `--emit kind=path`), the shadow's incremental cache, and `remap` added last (it wins)."""
    out: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        value = args[i + 1] if i + 1 < len(args) else None
        if a in ("--out-dir", "-o", "--emit") and value is not None:
            out += [a, _redirect(a, value, out_dir)]
            i += 2
            continue
        if a == "-C" and value is not None and value.startswith("incremental="):
            out += ["-C", f"incremental={incremental}"]
            i += 2
            continue
        if a.startswith("--out-dir="):
            a = f"--out-dir={out_dir}"
        elif a.startswith("--emit="):
            a = "--emit=" + _redirect("--emit", a.split("=", 1)[1], out_dir)
        elif a.startswith("-Cincremental="):
            a = f"-Cincremental={incremental}"
        out.append(a)
        i += 1
    return [*out, f"--remap-path-prefix={remap}"]


def _redirect(flag: str, value: str, out_dir: Path) -> str:
    if flag == "--out-dir":
        return str(out_dir)
    if flag == "-o":
        return str(out_dir / Path(value).name)
    kinds = []  # --emit: `kind` or `kind=path`
    for kind in value.split(","):
        name, eq, path = kind.partition("=")
        kinds.append(f"{name}={out_dir / Path(path).name}" if eq and path != "-" else kind)
    return ",".join(kinds)


def linking_shadow(args: list[str], rebuilt: set[Path], out_dir: Path) -> list[str]:
    """The crate's arguments with each `--extern` of a `rebuilt` library file pointed at the
    shadow's output, and the shadow's outputs searched too: a crate rebuilt in the shadow
    finds the crates it depends on, also rebuilt, by their new hash (rustc's hash check
    skips the real ones)."""
    out = list(args)
    for i, a in enumerate(out[:-1]):
        name, eq, path = out[i + 1].partition("=")
        if a == "--extern" and eq and Path(path) in rebuilt:
            out[i + 1] = f"{name}={out_dir / Path(path).name}"
    return [*out, "-L", f"dependency={out_dir}"]
