"""Entry points cargo and rustc call during a fat build, recording how to rebuild later.

`rustc` is installed as RUSTC_WORKSPACE_WRAPPER: it records each workspace crate's
rustc command (arguments, environment, working directory) and points its linker at our
shim. `link` is that shim in a fat build: it records the link command and links an
executable that keeps every symbol. In a thin build the shell shim only copies the
crate's fresh object files (see `shims.write_shims`).

Both also fit the project to what a patch needs, or refuse it with the cause and the fix:
a workspace dylib is linked from an rlib built beside it; a build without full debug info
(a release profile, say) fails as the binary's compile error; an executable that would
load other Rust dylibs fails its link.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

from hotline.engine.build.workspace import Crate


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


def _crate_types(args: list[str]) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--crate-type"]


def static_linking(args: list[str]) -> list[str]:
    """Links the workspace's Rust dylibs statically, from an rlib built beside each.

    A `crate-type = ["dylib"]` member makes the executable load `lib<name>.so` and std's
    own shared library, which only `cargo run` knows where to find, and its code would
    live outside the executable, where patches cannot reach. So such a crate is also
    built as an rlib, and every workspace crate that names it takes that rlib instead:
    the executable holds its code, as for any library member."""
    types = _crate_types(args)
    if "dylib" in types and not {"lib", "rlib"} & set(types):
        args = [*args, "--crate-type", "rlib"]
    out = list(args)
    for i, a in enumerate(args[:-1]):
        if a == "--extern" and args[i + 1].endswith(".so"):
            rlib = Path(args[i + 1].partition("=")[2]).with_suffix(".rlib")
            if rlib.exists():  # a workspace dylib, built with its rlib by the branch above
                out[i + 1] = f"{args[i + 1].partition('=')[0]}={rlib}"
    return out


def _codegen(args: list[str]) -> dict[str, str]:
    """rustc's `-C key=value` options (the last one wins, as in rustc)."""
    out: dict[str, str] = {}
    for i, a in enumerate(args):
        if a in ("-C", "--codegen") and i + 1 < len(args):
            option = args[i + 1]
        elif a.startswith(("-C", "--codegen=")):
            option = a.removeprefix("--codegen=").removeprefix("-C")
        elif a in ("-g", "-O"):
            option = {"-g": "debuginfo=2", "-O": "opt-level=2"}[a]
        else:
            continue
        key, _, value = option.partition("=")
        out[key] = value
    return out


_ON = ("", "y", "yes", "on", "true")


def debug_settings_problem(args: list[str]) -> tuple[str, str, str] | None:
    """(why, fix, profile) when the crate is built without full debug info, else None.

    Without the types in the debug info, the layouts an edit must keep (HL1002) cannot be
    read and a patch would go in unchecked, so the build is refused. A release profile
    also turns debug assertions off, which compiles `hotline::call` away."""
    options = _codegen(args)
    level = options.get("debuginfo", "0")
    split = options.get("split-debuginfo", "off") != "off"  # the types go to .dwo files
    if level in ("2", "full", *_ON) and not split:
        return None
    opt_level = options.get("opt-level", "0")
    assertions = options.get("debug-assertions", "on" if opt_level == "0" else "off") in _ON
    out_dir = next((args[i + 1] for i, a in enumerate(args[:-1]) if a == "--out-dir"), "")
    folder = Path(out_dir).parent.name  # target/<profile>/deps; dev builds into `debug`
    profile = "dev" if folder == "debug" else folder
    name = args[args.index("--crate-name") + 1]
    if split:
        kind = (
            f"split-debuginfo = {options['split-debuginfo']}, which moves the debug info out of its objects"
        )
    elif level in ("0", "none", "n", "no", "off", "false"):
        kind = "no debug info"
    else:
        kind = f"debug = {level}"
    why = (
        f"the `{profile}` profile builds {name} with {kind}, and Hotline needs the types in the "
        "debug info to check that an edit keeps each type's layout (HL1002): it does not patch "
        "such a build"
        + ("" if assertions else "; debug assertions are off too, which compiles hotline::call away")
    )
    if split:
        fix = f"remove split-debuginfo from [profile.{profile}] (on Linux it is off by default)"
    elif profile == "dev":
        fix = "set `debug = true` (the default) in [profile.dev] of the workspace's Cargo.toml"
    else:
        fix = (
            f"run the dev profile (drop --release or --profile {profile}); to make it faster, "
            'optimize the dependencies only: [profile.dev.package."*"] opt-level = 3'
        )
    return why, fix, profile


def _workspace_manifest(crate_dir: Path) -> Path:
    """The Cargo.toml that holds the workspace's profiles: the nearest one up the tree
    with a [workspace] table, else the crate's own."""
    for folder in (crate_dir, *crate_dir.parents):
        manifest = folder / "Cargo.toml"
        try:
            if manifest.is_file() and "workspace" in tomllib.loads(manifest.read_text()):
                return manifest
        except (OSError, tomllib.TOMLDecodeError):  # not the workspace's (cargo read that one)
            continue
    return crate_dir / "Cargo.toml"


def refusal(why: str, fix: str, profile: str) -> dict:
    """A rustc-style error at the profile's table in the workspace manifest: cargo reports
    it as the crate's compile error, so the fat build fails with it in every front end."""
    manifest = _workspace_manifest(Path(os.environ.get("CARGO_MANIFEST_DIR", ".")))
    lines = manifest.read_text().splitlines() if manifest.is_file() else []
    line = next((n for n, s in enumerate(lines, 1) if s.strip() == f"[profile.{profile}]"), 1)
    span = {
        "file_name": str(manifest),
        "byte_start": 0,
        "byte_end": 0,
        "line_start": line,
        "line_end": line,
        "column_start": 1,
        "column_end": 1 + len(lines[line - 1]) if lines else 1,
        "is_primary": True,
        "text": [],
        "label": None,
        "suggested_replacement": None,
        "suggestion_applicability": None,
        "expansion": None,
    }
    help_child = {
        "message": fix,
        "code": None,
        "level": "help",
        "spans": [],
        "children": [],
        "rendered": None,
    }
    return {
        "$message_type": "diagnostic",
        "message": why,
        "code": {"code": "HL1011", "explanation": None},
        "level": "error",
        "spans": [span],
        "children": [help_child],
        "rendered": f"error[HL1011]: {why}\n  --> {manifest}:{line}:1\n  = help: {fix}\n\n",
    }


def _linked_args(args: list[str]) -> Iterator[list[str]]:
    """The rustc arguments of a binary and of every workspace library it links, from the
    commands captured for them (the ones that wrote the very rlibs it is given). Build
    scripts and proc-macros run only inside cargo and rustc: they are not reached."""
    todo, seen = [args], set()
    while todo:
        current = todo.pop()
        yield current
        for name, path in Crate(name="", kind="bin", record={"args": current}).externs().items():
            if path.suffix != ".rlib" or path in seen:
                continue
            seen.add(path)
            for record in (_capture_dir() / "rustc").glob(f"{name}.*.json"):
                linked = Crate(name, record.stem.rsplit(".", 1)[1], json.loads(record.read_text()))
                if linked.kind != "bin" and linked.rlib == path:
                    todo.append(linked.record["args"])


def wrap_rustc(argv: list[str]) -> int:
    rustc, args = argv[0], argv[1:]
    key = _crate_key(args)
    if key is not None and "-" not in args:
        args = [*static_linking(args), "-C", "link-dead-code"]
        if key.endswith(".bin") and not key.startswith("build_script_"):
            # Checked for what the app links, when its binary is compiled: a library built
            # only for a build script or a proc-macro has no debug info, and needs none.
            problem = next(filter(None, map(debug_settings_problem, _linked_args(args))), None)
            if problem is not None:
                print(json.dumps(refusal(*problem)), file=sys.stderr)
                return 1
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


def rust_dylibs_problem(args: list[str]) -> str | None:
    """Why an executable that loads Rust dylibs cannot be patched, or None.

    rustc names the Rust dylibs it links by path (native libraries come as `-l`); a
    workspace member's are linked from their rlib (`static_linking`), so what remains
    belongs to a dependency built as `crate-type = ["dylib"]`, or to std itself."""
    found = [Path(a).name for a in args if a.endswith(".so") and not a.startswith("-")]
    if not found:
        return None
    return (
        f"Hotline cannot patch an executable that loads Rust dylibs ({', '.join(found)}): their "
        "code lies outside the executable, where patches do not reach, and only `cargo run` "
        'knows where to find them. A dependency is built as crate-type = ["dylib"] (the '
        "dynamic_linking feature of Bevy, say) or std is linked dynamically (-C prefer-dynamic): "
        "turn that off for the Hotline build"
    )


def link(argv: list[str]) -> int:
    problem = rust_dylibs_problem(argv)
    if problem is not None:
        print(f"hotline: {problem}", file=sys.stderr)
        return 1
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
