"""The fat build: `cargo build` of the app with every rustc and link command captured
(shims.py) and every symbol kept, then each crate's objects read for the diffs to come.

It runs at the start and at each restart; `Session` keeps what it returns.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hotline.engine.analyse.object_cache import Build, ObjectCache
from hotline.engine.analyse.patch_scope import prepare as prepare_patch_scope
from hotline.engine.build.shims import write_shims
from hotline.engine.build.workspace import (
    REPLAYED_MARK,
    Crate,
    extract_objects,
    forget_replayed_outputs,
    load_crates,
)
from hotline.engine.errors import HotlineError
from hotline.engine.link.executable import Executable, load_executable


def cargo_metadata(crate_dir: Path) -> dict:
    if not crate_dir.is_dir():
        raise HotlineError(f"{crate_dir} is not a directory: give the app's crate directory")
    try:
        out = subprocess.run(
            ["cargo", "metadata", "--format-version", "1"], cwd=crate_dir, capture_output=True, text=True
        )
    except FileNotFoundError as e:
        raise HotlineError("cargo was not found on PATH: install Rust with rustup (https://rustup.rs)") from e
    if out.returncode != 0:
        raise HotlineError(f"cargo metadata failed in {crate_dir}:\n{out.stderr.strip()}")
    return json.loads(out.stdout)


@dataclass(frozen=True)
class BuildSpec:
    """What to build, and where."""

    crate_dir: Path
    package: str
    bin_name: str
    features: list[str]
    profile: str | None
    linker: str | None
    target_dir: Path
    capture_dir: Path  # the captured commands and objects of this build key


@dataclass
class FatBuild:
    """What a fat build made: the executable to launch (a copy named by `build_id`) and
    each crate's objects, keyed by `Crate.key`."""

    build_id: str
    executable: Path
    exe: Executable
    crates: list[Crate]  # the binary and its workspace crates, dependencies first
    objects: ObjectCache
    builds: dict[str, Build]
    folders: dict[str, Path]  # where each crate's objects are on disk


def fat_build(spec: BuildSpec, on_event: Callable[[dict], None]) -> FatBuild:
    """Runs cargo with the capture shims, reporting progress as events; raises
    HotlineError (after a failed `build-finished`) when the build fails."""
    started, wall_start = time.perf_counter(), time.time()
    wrapper = write_shims(spec.capture_dir)
    env = {k: v for k, v in os.environ.items() if k != "HOTLINE_THIN_DIR"}
    env |= {
        "CARGO_TARGET_DIR": str(spec.target_dir),
        "RUSTC_WORKSPACE_WRAPPER": str(wrapper),
        "HOTLINE_CAPTURE_DIR": str(spec.capture_dir),
    }
    if spec.linker:
        env["HOTLINE_LINKER"] = spec.linker
    linker_note = spec.capture_dir / "linker"
    if linker_note.exists() and linker_note.read_text() != (spec.linker or "default"):
        (spec.capture_dir / REPLAYED_MARK).touch()  # cargo cannot see a linker change: relink
    forget_replayed_outputs(spec.capture_dir)
    linker_note.write_text(spec.linker or "default")
    units = max(1, len(cargo_metadata(spec.crate_dir).get("resolve", {}).get("nodes", [])))
    on_event({"event": "build-started", "kind": "fat", "total": units})
    cmd = ["cargo", "build", "--message-format=json-diagnostic-rendered-ansi", "--bin", spec.bin_name]
    cmd += ["--package", spec.package]
    if spec.features:
        cmd += ["--features", ",".join(spec.features)]
    if spec.profile:
        cmd += ["--profile", spec.profile]
    proc = subprocess.Popen(
        cmd, cwd=spec.crate_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    done, exe_path, diags = 0, None, []
    assert proc.stdout is not None and proc.stderr is not None
    stderr_tail: list[str] = []
    drain = threading.Thread(target=lambda: stderr_tail.extend(proc.stderr), daemon=True)  # type: ignore[union-attr]
    drain.start()
    for line in proc.stdout:
        msg = json.loads(line) if line.startswith("{") else {}
        reason = msg.get("reason")
        if reason == "compiler-artifact":
            done += 1
            on_event(
                {
                    "event": "build-progress",
                    "done": min(done, units),
                    "total": units,
                    "crate": msg["target"]["name"],
                }
            )
            if msg.get("executable") and msg["target"]["name"] == spec.bin_name:
                exe_path = Path(msg["executable"])
        elif reason == "compiler-message" and msg["message"].get("level") in ("error", "warning"):
            diags.append(msg["message"])
    proc.wait()
    drain.join()
    if proc.returncode != 0 or exe_path is None:
        on_event({"event": "build-finished", "ok": False, "ms": _ms(started), "diagnostics": diags})
        errors = [d.get("rendered") or d["message"] for d in diags if d.get("level") == "error"]
        raise HotlineError("the fat build failed:\n" + ("".join(errors) or "".join(stderr_tail[-30:])))
    build_id = secrets.token_hex(8)
    run_dir = spec.target_dir / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    launched = run_dir / f"{spec.bin_name}-{build_id}"
    shutil.copy2(exe_path, launched)
    built = FatBuild(
        build_id,
        launched,
        load_executable(launched),
        load_crates(spec.capture_dir, spec.bin_name.replace("-", "_")),
        ObjectCache(),
        {},
        {},
    )
    for crate in built.crates:
        crate.compiled_at = wall_start
        if crate.kind == "proc-macro":
            continue  # runs inside rustc, never in the app: an edit to it is refused (HL1006)
        folder = spec.capture_dir / "objects"
        if crate.kind != "bin":
            folder = spec.capture_dir / f"objects-{crate.key}"
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            extract_objects(crate.rlib, folder)
        built.builds[crate.key] = built.objects.load(folder)
        built.folders[crate.key] = folder
        # Analysed now, not during the first save.
        built.builds[crate.key].layouts(crate.name)
        prepare_patch_scope(built.builds[crate.key].objects)
    on_event(
        {
            "event": "build-finished",
            "ok": True,
            "ms": _ms(started),
            "diagnostics": diags,
            "executable": str(launched),
        }
    )
    return built


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)
