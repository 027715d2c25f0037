"""The workspace crates an app is built from, and how to rebuild one of them alone.

Each workspace crate's rustc command was captured during the fat build. A save rebuilds
the crates whose sources changed plus every workspace crate between them and the binary,
in dependency order; library crates leave their objects inside the rlib they write.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

_JOBSERVER_VARS = ("CARGO_MAKEFLAGS", "MAKEFLAGS", "MFLAGS")


class ProjectShapeError(Exception):
    """A project Hotline cannot run as it is; the message names the cause and the fix."""


def outside_path_packages(meta: dict) -> dict[str, Path]:
    """Path dependencies that are not workspace members (name -> package folder): cargo
    builds them like registry crates, so their rustc commands are not captured and their
    edits cannot be patched."""
    members = set(meta["workspace_members"])
    return {
        p["name"]: Path(p["manifest_path"]).parent
        for p in meta["packages"]
        if p.get("source") is None and p["id"] not in members
    }


def pick_binary(meta: dict, crate_dir: Path, wanted: str | None) -> tuple[dict, str]:
    """The package and binary target to run, from `cargo metadata`, as `cargo run` picks
    them: the crate directory's own package, or at a virtual workspace's root its
    default members (every member when it names none)."""
    members = set(meta["workspace_members"])
    pkgs = [p for p in meta["packages"] if p["id"] in members]
    manifest = crate_dir / "Cargo.toml"
    defaults = set(meta.get("workspace_default_members") or members)
    own = [p for p in pkgs if Path(p["manifest_path"]) == manifest]
    if not own:
        own = [p for p in pkgs if p["id"] in defaults] if not wanted else pkgs
    every = [(p, t["name"]) for p in own for t in p["targets"] if "bin" in t["kind"]]
    bins = [b for b in every if b[1] == wanted] if wanted else every
    examples = [(p, t) for p in own for t in p["targets"] if "example" in t["kind"] and t["name"] == wanted]
    if not bins and examples:
        package, example = examples[0]
        home = Path(package["manifest_path"]).parent
        src = Path(example["src_path"])
        path = src.relative_to(home) if src.is_relative_to(home) else src
        raise ProjectShapeError(
            f"{wanted} is an example ({path}), and Hotline runs binary targets only: declare it "
            f'as one too, [[bin]] name = "{wanted}" path = "{path}" in {home / "Cargo.toml"} (its '
            "dev-dependencies must then be dependencies), or move it to src/bin/"
        )
    if not bins and wanted and every:
        names = ", ".join(b[1] for b in every)
        raise ProjectShapeError(f"no binary target named {wanted} in {manifest}: it has {names}")
    if not bins:
        raise ProjectShapeError(f"no binary target{' named ' + wanted if wanted else ''} in {manifest}")
    if len(bins) > 1:
        names = ", ".join(b[1] for b in bins)
        raise ProjectShapeError(f"{manifest} has several binaries ({names}): pick one with --bin")
    return bins[0]


def namespace(key: str) -> str:
    """The crate name behind a `Crate.key`: the first segment of its items' paths."""
    return key.removesuffix(".bin")


@dataclass
class Crate:
    name: str  # rustc's crate name, the namespace of its items
    kind: str  # "bin" or a library kind
    record: dict  # the captured rustc command: rustc, args, cwd, env
    deps: set[str] = field(default_factory=set)  # keys of the workspace crates it links
    compiled_at: float = 0.0  # when its objects in the running app were compiled
    pending_at: float = 0.0  # when the build a patch is being made of started

    @property
    def key(self) -> str:
        """Unique among an app's crates: a package's binary and library share a crate
        name (src/main.rs uses the library as `app::`), so the binary is `app.bin`."""
        return f"{self.name}.bin" if self.kind == "bin" else self.name

    def _arg(self, flag: str) -> str | None:
        args = self.record["args"]
        for i, a in enumerate(args):
            if a == "-C" and i + 1 < len(args) and args[i + 1].startswith(flag + "="):
                return args[i + 1].split("=", 1)[1]
            if a.startswith(f"--{flag}="):
                return a.split("=", 1)[1]
        if f"--{flag}" in args:
            return args[args.index(f"--{flag}") + 1]
        return None

    @property
    def out_dir(self) -> Path:
        return Path(self._arg("out-dir") or self.record["cwd"])

    @property
    def stem(self) -> str:
        return self.name + (self._arg("extra-filename") or "")

    @property
    def rlib(self) -> Path:
        return self.out_dir / f"lib{self.stem}.rlib"

    def externs(self) -> dict[str, Path]:
        """The crates rustc was given by name (`--extern name=path`), and their files."""
        args = self.record["args"]
        pairs = [args[i + 1].partition("=") for i, a in enumerate(args[:-1]) if a == "--extern"]
        return {name: Path(path) for name, _, path in pairs}

    @property
    def source_folder(self) -> Path | None:
        """The folder of the crate's root file (`src/` for `src/main.rs`), where `mod x;`
        finds `x.rs` and `x/mod.rs`."""
        root = next((a for a in self.record["args"] if a.endswith(".rs") and not a.startswith("-")), None)
        return (Path(self.record["cwd"]) / root).resolve().parent if root else None

    def sources(self) -> list[Path]:
        """The files rustc read for this crate (its dep-info), absolute."""
        depinfo = self.out_dir / f"{self.stem}.d"
        if not depinfo.exists():
            return []
        cwd = Path(self.record["cwd"])
        return [cwd / f for f in depinfo_entries(depinfo.read_text())]

    def changed_since_compiled(self) -> bool:
        return self.written_since(self.compiled_at)

    def written_since(self, t: float) -> bool:
        """A source of the crate was written after time `t` (time.time())."""
        return any(p.exists() and p.stat().st_mtime > t for p in self.sources())

    def outputs(self) -> list[Path]:
        """What cargo built for this crate: deleting them makes cargo build it again."""
        return [p for p in self.out_dir.glob(f"*{self.stem}*") if p.is_file()]

    def replay(self, thin_dir: Path) -> tuple[int, list[str]]:
        """Runs the captured rustc command again; the objects end up in `thin_dir`.

        This rewrites the crate's rlib, dep-info and incremental state behind cargo's back;
        the caller marks the build directory so the next fat build starts afresh."""
        env = {k: v for k, v in self.record["env"].items() if k not in _JOBSERVER_VARS}
        env["HOTLINE_THIN_DIR"] = str(thin_dir)
        # The arguments stay exactly as cargo gave them: rustc's incremental cache is keyed
        # by its tracked options (--json among them), and any change discards it.
        proc = subprocess.run(
            [self.record["rustc"], *self.record["args"]],
            cwd=self.record["cwd"],
            env=env,
            capture_output=True,
            text=True,
        )
        if proc.returncode == 0 and self.kind != "bin":
            extract_objects(self.rlib, thin_dir)
        return proc.returncode, proc.stderr.splitlines()


def depinfo_entries(text: str) -> list[str]:
    """The files a rustc dep-info names, as written: relative to rustc's cwd, or absolute."""
    first = text.split("\n\n", 1)[0]
    files = first.split(":", 1)[1].replace("\\ ", "\0").split() if ":" in first else []
    return [f.replace("\0", " ") for f in files]


def load_crates(capture_dir: Path, bin_crate: str) -> list[Crate]:
    """The binary and the workspace crates it depends on, dependencies first."""
    crates: dict[str, Crate] = {}
    for path in sorted((capture_dir / "rustc").glob("*.json")):
        name, kind = path.stem.rsplit(".", 1)
        if kind == "bin" and name != bin_crate:
            continue
        crate = Crate(name, kind, json.loads(path.read_text()))
        crates[crate.key] = crate
    for crate in crates.values():
        # A library never names itself; a binary may name its package's library.
        crate.deps = {e for e in crate.externs() if e in crates and e != crate.key}
    root = crates.get(f"{bin_crate}.bin")
    if root is None:
        raise FileNotFoundError(f"no captured rustc command for the binary {bin_crate}")
    order: list[Crate] = []

    def visit(c: Crate) -> None:
        if c in order:
            return
        for dep in sorted(c.deps):
            linked, captured = c.externs()[dep], crates[dep].rlib
            if linked.suffix == ".rlib" and linked != captured:
                top = Path(os.path.commonpath([linked, captured]))  # the build directory
                raise ProjectShapeError(
                    f"{c.name} was built with {linked.relative_to(top)}, but the command Hotline "
                    f"captured for {dep} builds {captured.relative_to(top)}: {top} holds another "
                    "build's outputs (another profile, feature set or build-override), which cargo "
                    f"found fresh. Delete {top} and start again"
                )
            visit(crates[dep])
        order.append(c)

    visit(root)
    return order


REPLAYED_MARK = "replayed"


def forget_replayed_outputs(capture_dir: Path) -> None:
    """After thin rebuilds, cargo's freshness checks cannot be trusted (they compare mtimes,
    and our replays rewrote outputs): delete every workspace crate's outputs so the next
    fat build compiles the newest sources, whatever their mtimes."""
    mark = capture_dir / REPLAYED_MARK
    if not mark.exists():
        return
    for path in (capture_dir / "rustc").glob("*.json"):
        name, kind = path.stem.rsplit(".", 1)
        for output in Crate(name, kind, json.loads(path.read_text())).outputs():
            output.unlink(missing_ok=True)
    mark.unlink()


def dirty_crates(crates: list[Crate], edited: set[str] | None = None) -> list[Crate]:
    """Crates whose sources changed (on disk, or by their keys in `edited`: unsaved texts),
    and every crate after them that depends on one."""
    dirty: list[Crate] = []
    keys: set[str] = set()
    for crate in crates:  # dependencies come first
        if crate.key in (edited or ()) or crate.deps & keys or crate.changed_since_compiled():
            dirty.append(crate)
            keys.add(crate.key)
    return dirty


def owning_crate(crates: list[Crate], path: Path) -> Crate | None:
    resolved = path.resolve()
    return next((c for c in crates if resolved in {p.resolve() for p in c.sources()}), None)


def extract_objects(archive: Path, dest: Path) -> None:
    """Writes the `*.rcgu.o` members of an rlib (a GNU ar archive) into `dest`."""
    data = archive.read_bytes()
    if not data.startswith(b"!<arch>\n"):
        raise ValueError(f"{archive} is not an ar archive")
    pos, long_names = 8, b""
    while pos + 60 <= len(data):
        header = data[pos : pos + 60]
        name = header[:16].decode().strip()
        size = int(header[48:58].decode().strip())
        body = data[pos + 60 : pos + 60 + size]
        if name == "//":
            long_names = body
        elif name.startswith("/") and name[1:].isdigit():
            start = int(name[1:])
            name = long_names[start : long_names.index(b"/\n", start)].decode()
        name = name.rstrip("/")
        if name.endswith(".rcgu.o"):
            target = dest / name
            target.write_bytes(body)
            os.utime(target)
        pos += 60 + size + (size & 1)
