"""What a session knows and shares between its stages: the project's settings and paths,
the build the app runs, the running app, and the events it reports.

The stages (app_launch.py, app_watch.py, handover.py, save_patch.py, patch_delivery.py,
jump_retry.py) are functions of this state; `Session` (session.py) drives them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from hotline.engine.analyse.object_cache import Build, ObjectCache
from hotline.engine.app.engine_lock import EngineLock
from hotline.engine.app.pending_jumps import PendingJumps
from hotline.engine.app.running_app import RunningApp
from hotline.engine.build.fat_build import BuildSpec, cargo_metadata
from hotline.engine.build.rustc_diagnostics import diagnostics
from hotline.engine.build.speculative import SpeculativeBuilder
from hotline.engine.build.workspace import Crate, ProjectShapeError, outside_path_packages, pick_binary
from hotline.engine.errors import HotlineError, InternalError
from hotline.engine.link.executable import Executable

Event = dict
EventSink = Callable[[Event], None]


@dataclass
class Outcome:
    """What one save led to: `kind` is the event name that was emitted."""

    kind: str
    event: Event


class SessionState:
    """One app's project settings and paths, the build it runs, and its running process."""

    def __init__(
        self,
        crate_dir: Path,
        on_event: EventSink,
        *,
        bin_name: str | None = None,
        app_args: list[str] | None = None,
        target_dir: Path | None = None,
        connect_timeout: float = 60.0,
        allow_layout_changes: frozenset[str] = frozenset(),
        capture_output: bool = True,
        features: list[str] | None = None,
        profile: str | None = None,
        linker: str | None = None,
        entry_jumps: bool = True,
        debug_info: bool = True,
    ) -> None:
        """`capture_output=False` lets the app write to this process's terminal directly, so
        it keeps its output even if the engine goes away; otherwise lines become events.
        `entry_jumps=False` keeps the strict safe-point model: old code reaches new code only
        through `hotline::call` (ARCHITECTURE.md, "Entry jumps")."""
        self.crate_dir = Path(crate_dir).resolve()
        self.on_event = on_event
        self.app_args = app_args or []
        self.connect_timeout = connect_timeout
        self.allow_layout_changes = allow_layout_changes
        self.capture_output = capture_output
        linker = None if linker in (None, "default") else linker
        self.entry_jumps = entry_jumps
        self.debug_info = debug_info  # False: no debug ELF per patch (debug_elf.py), for the bench
        self.last_patched: dict | None = None  # seq, functions and symbols of the newest applied patch
        self.previous_builds: tuple[dict[str, Build], dict[str, Build]] | None = None  # (before, after) it
        meta = cargo_metadata(self.crate_dir)
        try:
            self.package, self.bin_name = pick_binary(meta, self.crate_dir, bin_name)
        except ProjectShapeError as e:
            raise HotlineError(str(e)) from e
        self.workspace_root = Path(meta["workspace_root"])
        self.outside_packages = outside_path_packages(meta)  # path dependencies, not members
        # What decides the fat build: an app left running is re-attached only if they agree.
        self.build_key = {
            "bin": self.bin_name,
            "features": sorted(features or []),
            "profile": profile,
            "linker": linker,
        }
        members = [Path(p["manifest_path"]) for p in meta["packages"] if p["id"] in meta["workspace_members"]]
        self.restart_files = sorted(
            {self.workspace_root / "Cargo.toml", self.workspace_root / "Cargo.lock"}
            | {m for m in members}
            | {m.parent / "build.rs" for m in members}
        )
        self.target_dir = Path(target_dir or os.environ.get("HOTLINE_TARGET_DIR") or _hotline_dir(meta))
        # One per build key: the commands and objects captured for one binary, profile and
        # feature set are never taken for another's, whichever outputs cargo finds fresh.
        self.capture_dir = self.target_dir / "capture" / _digest(self.build_key)
        self.build_spec = BuildSpec(
            crate_dir=self.crate_dir,
            package=self.package["name"],
            bin_name=self.bin_name,
            features=features or [],
            profile=profile,
            linker=linker,
            target_dir=self.target_dir,
            capture_dir=self.capture_dir,
        )
        self.app_record = self.target_dir / "app.json"  # the app this engine launched
        # Entry jumps no stop could write yet, kept with the app record (pending_jumps.py).
        self.pending = PendingJumps.load(self.target_dir / "pending-jumps.json")
        self.lock = EngineLock(self.target_dir / "engine.lock")
        self.log_file = self.target_dir / "engine.log"
        self.exe: Executable | None = None
        self.objects = ObjectCache()
        self.crates: list[Crate] = []  # the binary and its workspace crates, dependencies first
        self.builds: dict[str, Build] = {}  # per crate: what the running app was built from
        self.build_folders: dict[str, Path] = {}  # per crate: where those objects are on disk
        self.build_id = ""
        self.running: RunningApp | None = None
        self.patch_lock = threading.Lock()  # held while a patch is on its way to the app
        self.speculative = SpeculativeBuilder(  # its `plan_ahead` is the session's (save_patch.py)
            self.target_dir,
            self.workspace_root,
            on_stats=lambda stats: self.on_event({"event": "speculation", **stats}),
            on_ended=lambda outcome, stderr: self.on_event(
                {"event": "speculative-build", "ok": outcome == "ok", "diagnostics": diagnostics(stderr)}
            ),
        )

    @property
    def crate_name(self) -> str:
        return self.bin_name.replace("-", "_")

    @property
    def app_alive(self) -> bool:
        return self.running is not None and self.running.proc.poll() is None

    def outside_package(self, path: Path) -> str | None:
        """The path dependency outside the workspace that `path` belongs to, if any."""
        resolved = path.resolve()
        return next(
            (n for n, d in self.outside_packages.items() if resolved.is_relative_to(d.resolve())), None
        )

    def accept(self, dirty: list[Crate], new: dict[str, Build], folders: dict[str, Path]) -> None:
        """The running app now matches these crates' new builds."""
        self.previous_builds = ({name: self.builds[name] for name in new}, new)
        self.builds.update(new)
        self.build_folders.update(folders)
        for crate in dirty:
            crate.compiled_at = crate.pending_at

    def emit(self, kind: str, **fields) -> Outcome:
        event = {"event": kind, **fields}
        self.on_event(event)
        return Outcome(kind, event)

    @contextlib.contextmanager
    def reported(self, doing: str) -> Iterator[None]:
        """An exception the engine did not expect becomes an `engine-error` event, with its
        traceback in the log file, and an `InternalError`; the app is left as it was."""
        try:
            yield
        except HotlineError:
            raise
        except ProjectShapeError as e:  # the project's shape, not a bug: the message says what to do
            raise HotlineError(str(e)) from e
        except Exception as e:
            message = f"{doing} failed: {type(e).__name__}: {e}"
            with contextlib.suppress(OSError):
                self.log_file.parent.mkdir(parents=True, exist_ok=True)
                with open(self.log_file, "a") as log:
                    log.write(
                        f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n{traceback.format_exc()}\n"
                    )
            logging.getLogger("hotline").debug("%s", message, exc_info=True)
            self.on_event({"event": "engine-error", "message": message, "log": str(self.log_file)})
            raise InternalError(f"internal error: {message} (details: {self.log_file})") from e


def elapsed_ms(start: float, end: float | None = None) -> float:
    """The `ms` of an event: from `start` to `end` (or now), `time.perf_counter()` readings."""
    return round(((end if end is not None else time.perf_counter()) - start) * 1000, 1)


def _hotline_dir(meta: dict) -> Path:
    """Where Hotline builds and keeps its state (lock, app record, captures): `hotline/` in
    cargo's target directory. A target directory outside the workspace (CARGO_TARGET_DIR or
    build.target-dir) may be shared by other workspaces, or by copies of this one: each gets
    a folder of its own there, so that one's engine never takes another's app or commands."""
    cargo_target, root = Path(meta["target_directory"]), Path(meta["workspace_root"])
    if cargo_target.resolve().is_relative_to(root.resolve()):
        return cargo_target / "hotline"
    return cargo_target / "hotline" / f"{root.name}-{_digest(str(root.resolve()))[:12]}"


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]
