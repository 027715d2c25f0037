"""One app under Hotline: fat build, launch, and a patch per save.

Front ends (the CLI, the language server) drive a `Session` and receive its progress as
event dicts (specified in `schemas/events.schema.json`) through the `on_event` callback.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import subprocess
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from hotline.engine.analyse.demangle import demangle
from hotline.engine.analyse.entry_jumps import EntryJumps
from hotline.engine.analyse.object_cache import Build, ObjectCache
from hotline.engine.app import app_record, handover, jump_retry
from hotline.engine.app.app_output import Follower, OutputFiles
from hotline.engine.app.app_record import AdoptedProcess, AppRecord
from hotline.engine.app.channel import ChannelError, PatchChannel
from hotline.engine.app.engine_lock import EngineLock
from hotline.engine.app.pending_jumps import PendingJumps
from hotline.engine.app.preload import PreloadError, preload_env, preload_library
from hotline.engine.app.thread_stop import stop_mode
from hotline.engine.build.fat_build import BuildSpec, cargo_metadata, fat_build
from hotline.engine.build.speculative import SpeculativeBuilder
from hotline.engine.build.workspace import (
    REPLAYED_MARK,
    Crate,
    ProjectShapeError,
    dirty_crates,
    outside_path_packages,
    owning_crate,
    pick_binary,
)
from hotline.engine.errors import EngineBusy, HotlineError, InternalError
from hotline.engine.link.debug_elf import SLOT, DebugInfoWriter
from hotline.engine.link.executable import ANCHOR, Executable
from hotline.engine.link.patch_link import LinkedPatch, ProcessSymbols
from hotline.engine.patch_plan import PatchBase, PatchPlan, PlannedAhead, Verdict, plan_patch
from hotline.engine.report import live_frames, patch_warnings
from hotline.engine.report.disassembly import function_diff
from hotline.engine.report.receipts import Receipts, receipt_warnings

Event = dict
#: Files whose change needs a full rebuild and relaunch (rule HL1006), not a patch.
RESTART_FILES = ("Cargo.toml", "Cargo.lock", "build.rs")
EventSink = Callable[[Event], None]


@dataclass
class Outcome:
    """What one save led to: `kind` is the event name that was emitted."""

    kind: str
    event: Event


@dataclass
class _Running:
    proc: subprocess.Popen
    channel: PatchChannel
    slide: int
    region_next: int
    region_end: int
    prior: ProcessSymbols
    jumps: EntryJumps
    seq: int = 0
    debug: DebugInfoWriter | None = None  # debug ELFs and perf map, written after each patch
    runtime: str = "linked"  # "injected": preloaded into an app that does not link the runtime crate
    record: AppRecord | None = None  # what the next engine needs to re-attach (handover.py)
    output: Follower | None = None  # the app's output files, followed into `app-output` events
    retrying: bool = False  # pending entry jumps are being retried (jump_retry.py)
    receipts: Receipts | None = None  # which edited functions ran since their patch


@dataclass
class _Save:
    """One save's patch on its way to the app: what it rebuilt, and where."""

    seq: int
    dirty: list[Crate]  # the crates it rebuilt, dependencies first
    folders: dict[str, Path]  # per crate key: their new objects
    new: dict[str, Build]  # per crate key: those objects, loaded
    diags: list[dict]  # rustc's
    work: Path  # this patch's folder
    speculative: bool  # compiled while the user typed
    planned_ahead: bool  # and diffed and linked then too
    started: float


def _diagnostics(stderr_lines: list[str]) -> list[dict]:
    """rustc's JSON diagnostics (errors and warnings) from its stderr."""
    out = []
    for line in stderr_lines:
        if not line.startswith("{"):
            continue
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("$message_type") == "diagnostic" and msg.get("level") in ("error", "warning"):
            out.append(msg)
    return out


class Session:
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
        self.running: _Running | None = None
        self._lock = threading.Lock()
        self.speculative = SpeculativeBuilder(
            self.target_dir,
            self.workspace_root,
            plan_ahead=self._plan_ahead,
            on_stats=lambda stats: self.on_event({"event": "speculation", **stats}),
            on_ended=lambda outcome, stderr: self.on_event(
                {"event": "speculative-build", "ok": outcome == "ok", "diagnostics": _diagnostics(stderr)}
            ),
        )

    @property
    def crate_name(self) -> str:
        return self.bin_name.replace("-", "_")

    # -- fat build -----------------------------------------------------------------
    def fat_build(self) -> Path:
        """Builds the app keeping every symbol (fat_build.py); returns the executable to launch."""
        built = fat_build(self.build_spec, self.on_event)
        self.build_id, self.exe, self.crates = built.build_id, built.exe, built.crates
        self.objects, self.builds, self.build_folders = built.objects, built.builds, built.folders
        return built.executable

    # -- the app ---------------------------------------------------------------------
    def launch(self, executable: Path) -> int:
        """Starts the app attached to a fresh patch channel; returns its pid."""
        assert self.exe is not None
        runtime, runtime_env = self._runtime_env()
        debug_dir = self.target_dir / "patches-debug" / self.build_id
        channel = PatchChannel(self.build_id, debug_dir=debug_dir)
        # The app writes to files, not pipes: it outlives this engine (app_output.py).
        files = OutputFiles(self.target_dir / "output", self.build_id) if self.capture_output else None
        fds = files.create() if files else {}
        try:
            proc = subprocess.Popen(
                [str(executable), *self.app_args],
                cwd=self.crate_dir,
                env=os.environ | channel.env() | runtime_env,
                stdout=fds.get("stdout"),
                stderr=fds.get("stderr"),
                stdin=subprocess.DEVNULL,
            )
        finally:
            for fd in fds.values():
                os.close(fd)
        try:  # from here until it is recorded as running, any interruption stops the app
            record = AppRecord(
                app_pid=proc.pid,
                app_start=app_record.start_time(proc.pid) or "",
                build_id=self.build_id,
                executable=str(executable),
                runtime=runtime,
                socket=str(channel.path),
                token=channel.token,
                debug_dir=str(debug_dir),
                output={k: str(v) for k, v in files.paths.items()} if files else None,
                build_key=self.build_key,
                manifests=handover.manifests(self.restart_files),
                app_args=self.app_args,
            )
            app_record.write(self.app_record, record)
            # Announced before its output is forwarded: no `app-output` of this app precedes it.
            self.on_event(
                {
                    "event": "app-started",
                    "pid": proc.pid,
                    "executable": str(executable),
                    "runtime": runtime,
                    "stop": stop_mode(proc.pid),
                }
            )
            follower = self.follow_output(files, proc) if files else None
            threading.Thread(target=self.watch_exit, args=(proc,), daemon=True).start()
            hello = channel.accept(proc.pid, self.connect_timeout, lambda: proc.poll() is None)
            if hello.mode != runtime:
                raise ChannelError(f"the app's runtime says it is {hello.mode}, but it should be {runtime}")
            slide = hello.slide(self.exe.address(ANCHOR))
        except BaseException as e:  # a channel error, or Ctrl-C / `kill` while waiting for it
            channel.close()
            proc.kill()  # an app we cannot patch is not left running behind the user's back
            proc.wait()
            app_record.clear(self.app_record)
            if isinstance(e, ChannelError):
                raise HotlineError(f"cannot attach to the app: {e}; it was stopped") from e
            raise
        prior = ProcessSymbols()
        self.pending.clear()  # a new process: nothing of an earlier one is pending
        self.running = _Running(
            proc,
            channel,
            slide=slide,
            region_next=hello.region_start,
            region_end=hello.region_start + hello.region_size,
            prior=prior,
            jumps=EntryJumps(self.exe, slide, prior),
            runtime=runtime,
            record=record,
            output=follower,
        )
        handover.save(self)
        return proc.pid

    def _runtime_env(self) -> tuple[str, dict[str, str]]:
        """How the runtime gets into the app: "linked" (the app depends on the runtime crate:
        nothing to add) or "injected" (preloaded, `preload.py`), and the variables for that."""
        assert self.exe is not None
        if self.exe.links_runtime:
            return "linked", {}  # never preloaded too: one runtime, one connection
        if not self.exe.dynamic:
            raise HotlineError(
                f"{self.exe.path.name} is statically linked (musl?), so the runtime cannot be preloaded "
                "into it: build for a glibc target, or make the app depend on the runtime crate "
                '(README, "Use")'
            )
        try:
            library = preload_library(self.on_event)
        except PreloadError as e:
            raise HotlineError(str(e)) from e
        return "injected", preload_env(library, os.environ.get("LD_PRELOAD"))

    def follow_output(
        self, files: OutputFiles, proc: subprocess.Popen | AdoptedProcess, from_end: bool = False
    ) -> Follower:
        """`app-output` events for each line the app writes to its output files."""
        follower = Follower(
            files,
            lambda stream, line: self.on_event({"event": "app-output", "stream": stream, "line": line}),
            lambda: proc.poll() is None,
            from_end,
        )
        if self.running is not None and self.running.proc is proc:
            self.running.output = follower
        return follower

    def watch_exit(self, proc: subprocess.Popen | AdoptedProcess) -> None:
        """`app-exited` when the app ends, after its last output lines."""
        code = proc.wait()
        running = self.running
        if running is not None and running.proc is proc and running.output is not None:
            running.output.join()
        event: Event = {
            "event": "app-exited",
            "pid": proc.pid,
            "code": code if code is None or code >= 0 else None,
        }
        if code is not None and code < 0:
            event["signal"] = -code
        if (
            code is not None and code < 0 and self.last_patched
        ):  # a crash after a patch: name what the patch changed
            event["last_patch"] = {k: self.last_patched[k] for k in ("seq", "functions")}
        self.on_event(event)

    @property
    def app_alive(self) -> bool:
        return self.running is not None and self.running.proc.poll() is None

    def stop(self) -> None:
        """Stops the app and lets go of the crate (another engine may take it)."""
        self._stop_app()
        self.lock.release()

    def _stop_app(self) -> None:
        self.speculative.cancel()
        running, self.running = self.running, None
        if running is None:
            return
        app_record.clear(self.app_record)
        if running.proc.poll() is None:
            running.proc.terminate()
            try:
                running.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                running.proc.kill()
                running.proc.wait()
        running.channel.close()
        if running.debug is not None:
            running.debug.close()
        if running.receipts is not None:
            running.receipts.close()

    def detach(self, reap_after_s: float | None = None) -> None:
        """Leaves the app running for the next engine to re-attach to (`handover.py`) and lets
        go of the crate. With `reap_after_s`, a detached process stops the app if no engine
        has re-attached by then (an editor that closed, not one that reloaded)."""
        self.speculative.cancel()
        with self._lock:  # never in the middle of a patch
            running, self.running = self.running, None
        if running is None:
            self.lock.release()
            return
        if running.output is not None:
            running.output.stop()
        running.channel.close(keep_path=True)
        if running.debug is not None:
            running.debug.close()
        if running.receipts is not None:
            running.receipts.close()
        self.lock.release()
        if reap_after_s is not None:
            handover.spawn_reaper(self.target_dir, reap_after_s)

    def _own_crate(self) -> None:
        """Takes the build directory's engine lock, or says which engine has it."""
        holder = self.lock.acquire()
        if holder is None:
            return
        _, app = app_record.read(self.app_record)
        app_pid = app[0] if app and app_record.is_alive(*app) else None
        running = f" (its app is pid {app_pid})" if app_pid else ""
        raise EngineBusy(
            f"{self.bin_name} is already under another Hotline, pid {holder}{running}: stop that one "
            f"first (Ctrl-C in its terminal, or the editor's Hotline: Stop), or take it over",
            holder,
            app_pid,
        )

    def start(self) -> int:
        """Re-attaches to the app an earlier engine left running, else fat build and launch."""
        with self._reported("starting the app"):
            self._own_crate()
            adopted = handover.adopt(self)
            if adopted is None:
                return self.launch(self.fat_build())
            if self.pending.jumps and self.running is not None:  # left by the engine before
                jump_retry.schedule(self, self.running)
            return adopted

    def restart(self, clean: bool = False) -> int:
        """Full rebuild and relaunch; `clean` first discards the workspace's build artifacts."""
        with self._reported("restarting the app"):
            self._own_crate()
            self._stop_app()
            if clean:
                subprocess.run(
                    ["cargo", "clean", "--package", self.package["name"]],
                    cwd=self.crate_dir,
                    env=os.environ | {"CARGO_TARGET_DIR": str(self.target_dir)},
                    capture_output=True,
                )
            return self.launch(self.fat_build())

    @contextlib.contextmanager
    def _reported(self, doing: str) -> Iterator[None]:
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

    # -- a save ------------------------------------------------------------------------
    def speculate(self, overlays: dict[Path, str]) -> bool:
        """Compiles the crates a save would rebuild in the background from the editor's
        unsaved texts (`overlays`: path -> text), so that the save of exactly these texts
        skips rustc (speculative.py). Returns at once, True if such a build runs or is done.
        Nothing reaches the app before the save."""
        if not self.app_alive:
            return False
        return self.speculative.start(self.crates, overlays)

    def buffers_changed(self) -> None:
        """The editor's unsaved texts changed (a keystroke): a speculative build in flight
        is of text that is gone, and stops."""
        self.speculative.interrupt()

    def patch(self, changed: list[Path] | None = None) -> Outcome:
        """Rebuilds what the save changed and patches the running app; never stops the app.

        `changed` (the saved files), when given, lets a save outside the app say so.
        """
        with self._lock:
            try:
                with self._reported("patching"):
                    outcome = self._patch(changed or [])
                    self._prune_patch_dirs()
                    handover.save(self)  # outcomes that sent nothing: accepted builds, say
                    return outcome
            except InternalError as e:
                return Outcome("engine-error", {"event": "engine-error", "message": str(e)})

    def _prune_patch_dirs(self) -> None:
        """Deletes the work folders of earlier patches, this launch's or an earlier one's:
        all in them was read into memory, and their hard links would keep every replaced
        object file on disk."""
        keep = str(self.running.seq) if self.running else None
        root = self.target_dir / "patches"
        for folder in root.iterdir() if root.is_dir() else ():
            if folder.name != keep:
                shutil.rmtree(folder, ignore_errors=True)

    def _emit(self, kind: str, **fields) -> Outcome:
        event = {"event": kind, **fields}
        self.on_event(event)
        return Outcome(kind, event)

    def _patch(self, changed: list[Path]) -> Outcome:
        started = time.perf_counter()
        running = self.running
        if running is None or running.proc.poll() is not None or self.exe is None:
            return self._emit("patch-refused", rule="HL1000", reason="the app is not running: start it first")
        seq = running.seq + 1
        self.on_event({"event": "patch-started", "seq": seq})
        outside = [p for p in changed if p.suffix == ".rs" and owning_crate(self.crates, p) is None]
        foreign = sorted({name for p in outside if (name := self.outside_package(p)) is not None})
        if foreign:
            folder = self.outside_packages[foreign[0]]
            return self._emit(
                "patch-refused",
                rule="HL1006",
                symbol=foreign[0],
                reason=f"{foreign[0]} ({folder}) is a path dependency outside the workspace, which Hotline "
                "does not rebuild per save: full rebuild required (or add it to the workspace's members)",
            )
        if changed and len(outside) == len(changed):
            shown = ", ".join(str(p) for p in outside)
            return self._emit(
                "no-change", message=f"{shown} is not part of {self.bin_name}'s build", ms=_ms(started)
            )
        dirty = dirty_crates(self.crates)
        if not dirty:
            return self._emit("no-change", message="no source of the app changed", ms=_ms(started))
        macros = [c.name for c in dirty if c.kind == "proc-macro"]
        if macros:
            return self._emit(
                "patch-refused",
                rule="HL1006",
                symbol=macros[0],
                reason=f"proc-macro crate {macros[0]} changed: full rebuild required",
            )
        work = self.target_dir / "patches" / str(seq)
        shutil.rmtree(work, ignore_errors=True)
        folders = {crate.key: work / "objects" / crate.key for crate in dirty}
        (self.capture_dir / REPLAYED_MARK).touch()
        # compiled while the user typed, from exactly the files now saved
        speculated = self.speculative.take(dirty, folders)
        if speculated is not None:
            diags = _diagnostics(speculated.stderr)
            for crate in dirty:
                crate.pending_at = speculated.hashed_at
        else:
            compiled = self._compile(dirty, folders, started)
            if isinstance(compiled, Outcome):
                return compiled
            diags = compiled
        t_rustc = time.perf_counter()

        base = self._base(running)
        ahead: PlannedAhead | None = speculated.plan if speculated is not None else None
        planned_ahead = ahead is not None and ahead.key == base.key
        if ahead is not None and planned_ahead:  # while the user paused
            new, plan = ahead.new, ahead.plan
            t_diff = time.perf_counter()
        else:
            new = {key: self.objects.load(folder) for key, folder in folders.items()}
            plan = plan_patch(base, new, diags)
            t_diff = plan.diff_done if isinstance(plan, PatchPlan) else time.perf_counter()
        self.objects.forget_all_but(*self.builds.values(), *new.values())
        if isinstance(plan, Verdict):
            if plan.accept:
                self._accept(dirty, new, folders)
            ms = {"ms": _ms(started)} if plan.kind == "no-change" else {}
            return self._emit(plan.kind, **plan.fields, **ms)
        t_link = time.perf_counter()
        save = _Save(seq, dirty, folders, new, diags, work, speculated is not None, planned_ahead, started)
        phases = {"rustc": _ms(started, t_rustc), "diff": _ms(t_rustc, t_diff), "link": _ms(t_diff, t_link)}
        return self._deliver(running, save, plan, phases, t_link)

    def outside_package(self, path: Path) -> str | None:
        """The path dependency outside the workspace that `path` belongs to, if any."""
        resolved = path.resolve()
        return next(
            (n for n, d in self.outside_packages.items() if resolved.is_relative_to(d.resolve())), None
        )

    def _compile(self, dirty: list[Crate], folders: dict[str, Path], started: float) -> list[dict] | Outcome:
        """The dirty crates' captured rustc commands replayed (workspace.py), dependencies
        first; rustc's diagnostics, or the `compile-error` outcome."""
        diags: list[dict] = []
        for crate in dirty:
            folders[crate.key].mkdir(parents=True)
            crate_started = time.time()
            rc, stderr = crate.replay(folders[crate.key])
            diags += _diagnostics(stderr)
            if rc < 0:
                message = f"rustc was killed by signal {-rc} while compiling {crate.name}"
                return self._emit(
                    "compile-error", diagnostics=diags, crate=crate.name, message=message, ms=_ms(started)
                )
            if rc != 0:
                return self._emit("compile-error", diagnostics=diags, crate=crate.name, ms=_ms(started))
            crate.pending_at = crate_started
        return diags

    def _base(self, running: _Running) -> PatchBase:
        assert self.exe is not None
        return PatchBase(
            exe=self.exe,
            crate_name=self.crate_name,
            crate_dir=self.crate_dir,
            builds=dict(self.builds),
            slide=running.slide,
            prior=running.prior,
            jumps=running.jumps,
            region_next=running.region_next,
            region_end=running.region_end,
            allow_layout_changes=self.allow_layout_changes,
            entry_jumps=self.entry_jumps,
            key=(  # the launch, the patches sent to it, and what each crate runs
                self.build_id,
                id(running),
                running.seq,
                running.region_next,
                tuple((k, id(b)) for k, b in self.builds.items()),
                tuple(sorted(self.allow_layout_changes)),  # a setting the editor changes live
            ),
        )

    def _plan_ahead(self, folders: dict[str, Path]) -> PlannedAhead | None:
        """Called by the speculative builder when a build is done: its patch planned now,
        against what the app runs, so that a save of these texts only sends it. Skipped
        while a save or another patch holds the session (that save plans for itself)."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            running = self.running
            if running is None or running.proc.poll() is not None:
                return None
            base = self._base(running)
            new = {key: self.objects.load(folder) for key, folder in folders.items()}
            plan = plan_patch(base, new, [])
            return PlannedAhead(base.key, new, plan) if isinstance(plan, PatchPlan) else None
        finally:
            self._lock.release()

    def _deliver(
        self, running: _Running, save: _Save, plan: PatchPlan, phases: dict[str, float], t_link: float
    ) -> Outcome:
        """Sends the linked patch to the app, and reports what it did with it."""
        linked, changes, seq, new, diags = plan.linked, plan.changes, save.seq, save.new, save.diags
        assert self.exe is not None
        # this patch's jumps, and those an earlier stop could not write (pending_jumps.py)
        sent = self.pending.with_plan(plan.jumps.jumps, set(changes.changed)) if self.entry_jumps else []
        # the old copies looked for on the threads' stacks in the same stop (live_frames.py)
        frames, owners = live_frames.old_copies(self.exe, running.slide, running.prior, changes.edited)
        image = save.work / "patch.img"
        try:
            image.write_bytes(linked.image)
        except OSError as e:  # disk full, say: the app is untouched
            return self._emit("patch-refused", rule="HL1097", reason=f"cannot write the patch image: {e}")
        message = {
            "seq": seq,
            "image": str(image),
            "segments": linked.segments,
            "imports": [{"slot": s, "name": n} for s, n in linked.imports],
            "eh_frame": linked.eh_frame,
            "table": [list(p) for p in linked.table],
            "entry_jumps": [[site, target] for _, site, target in sent],
            "frames": frames,  # looked for in the stop, never sent (channel.py)
        }
        try:
            result = running.channel.send_patch(message)
        except ChannelError as e:
            return self._emit("patch-refused", rule="HL1097", reason=str(e), diagnostics=diags)
        t_done = time.perf_counter()
        running.seq = seq
        # From here on the app has this seq: each outcome is saved for the next engine before
        # it is reported, so that an engine killed right after the report is re-attached from.
        if result["status"] != "applied":
            handover.save(self)
            return self._emit(
                "patch-refused", rule="HL1096", reason=result.get("reason", ""), diagnostics=diags
            )
        running.region_next += -(-linked.size // SLOT) * SLOT  # each patch starts a debug slot
        running.prior.record(linked)
        if result["self_check"]:  # applied, yet not all in place: never reported as patched
            self._accept(save.dirty, new, save.folders)
            handover.save(self)
            reason = "; ".join(result["self_check"])
            return self._emit(
                "patch-refused",
                rule="HL1094",
                reason=f"the app applied the patch, but its self-check failed ({reason}): restart required",
                diagnostics=diags,
            )
        warnings = list(plan.warnings)
        jump_report = result.get("entry_jumps") or {}
        if self.entry_jumps:
            warnings += patch_warnings.jump_warnings(self.crate_dir, new, changes, plan.jumps, jump_report)
        warnings += patch_warnings.signature_warnings(self.crate_dir, new, plan.resigned)
        landed = self.pending.after_stop(sent, jump_report) if self.entry_jumps else []
        found = running.channel.live_frames
        if found is None and not sent:  # no stop wrote jumps: one only to look
            found = running.channel.look(frames)
        live, live_warnings = live_frames.report(
            self.crate_dir,
            new,
            owners,
            found,
            {w["symbol"] for w in warnings if w["rule"] == "HL1010" and "symbol" in w},
            _unlooked(running.channel, sent),
        )
        warnings += live_warnings
        self._accept(save.dirty, new, save.folders)
        self.last_patched = {
            "seq": seq,
            "functions": [demangle(n) for n in changes.changed + changes.added],
            "symbols": changes.changed + changes.added,
        }
        apply_ms = result["apply_us"] / 1000
        phases |= {
            "deliver": max(0.0, round(_ms(t_link, t_done) - apply_ms, 1)),
            "apply": round(apply_ms, 1),
        }
        handover.save(self)
        outcome = self._emit(
            "patched",
            seq=seq,
            ms=_ms(save.started, t_done),
            phases=phases,
            # only what the user edited; functions relinked because a line above them moved
            # (their panic Locations) are patched all the same, and counted in `relinked`
            functions=[demangle(n) for n in plan.edited],
            carried=[demangle(n) for n in plan.carried],
            relinked=len(changes.moved),
            added=[demangle(n) for n in changes.added],
            symbols=changes.changed + changes.added,
            crates=[c.name for c in save.dirty],
            speculative=save.speculative,
            planned_ahead=save.planned_ahead,
            units=plan.units,
            entry_jumps={
                "written": jump_report.get("written", 0),
                "skipped": len(plan.jumps.skipped)
                + len(jump_report.get("busy", []))
                + len(jump_report.get("held", [])),
            },
            locations=patch_warnings.locations(new, changes.edited + changes.added),
            diagnostics=diags,
            warnings=warnings,
            live_frames=live,
            pending_jumps={
                "landed": [demangle(n) for n in landed],
                "pending": [demangle(n) for n in self.pending.functions()],
            },
        )
        if landed:
            self._emit(
                "jumps-landed",
                seq=seq,
                functions=[demangle(n) for n in landed],
                symbols=landed,
                pending=[demangle(n) for n in self.pending.functions()],
            )
        if self.pending.jumps:
            jump_retry.schedule(self, running)
        self._receipts(running).track(
            seq,
            linked,
            receipt_warnings(self.crate_dir, new, plan.edited),
            explained={f["symbol"] for f in live.get("frames", [])},  # HL1012 says why
        )
        if self.debug_info:
            self._debug_info_after_patch(running, seq, linked)
        return outcome

    def _receipts(self, running: _Running) -> Receipts:
        """The app's receipt reader (receipts.py), started at its first patch; its events stop
        once this engine stopped the app or let go of it."""
        if running.receipts is None:

            def on_event(e: dict) -> None:
                if self.running is running:
                    self.on_event(e)

            def on_failure(e: Exception) -> None:  # a channel closed by the app's exit is no news
                if self.running is running and not app_record.exiting(running.proc.pid):
                    with contextlib.suppress(InternalError), self._reported("reading the app's receipts"):
                        raise e

            running.receipts = Receipts(running.channel, on_event, on_failure)
        return running.receipts

    def _debug_info_after_patch(self, running: _Running, seq: int, linked: LinkedPatch) -> None:
        """After `patched` is out: the patch's debug ELF, its perf map lines and the
        debug-info message are made on a background thread (debug_elf.py). Once this engine
        stopped the app or let go of it, or the app exited (its `app-exited` is the news), a
        delivery the closed channel cut short is not reported."""
        if running.debug is None:

            def on_event(e: dict) -> None:
                if self.running is running and app_record.start_time(running.proc.pid) is not None:
                    self.on_event(e)

            running.debug = DebugInfoWriter.for_channel(running.channel, self.build_id, on_event)
        running.debug.submit(seq, linked, running.proc.pid)

    def last_patch_disassembly(self, limit: int = 8) -> list[tuple[str, str]]:
        """(function, unified diff of its machine code) for the newest patch's changed functions."""
        if self.previous_builds is None:
            return []
        old, new = self.previous_builds
        out = []
        for symbol in (self.last_patched or {}).get("symbols", [])[:limit]:
            for name in new:
                diff = function_diff(old[name].objects, new[name].objects, symbol)
                if diff:
                    out.append((demangle(symbol), diff))
                    break
        return out

    def _accept(self, dirty: list[Crate], new: dict[str, Build], folders: dict[str, Path]) -> None:
        """The running app now matches these crates' new builds."""
        self.previous_builds = ({name: self.builds[name] for name in new}, new)
        self.builds.update(new)
        self.build_folders.update(folders)
        for crate in dirty:
            crate.compiled_at = crate.pending_at


def _unlooked(channel: PatchChannel, sent: list) -> str:
    """Why no stop looked at the threads' stacks for live frames (when none did)."""
    if not sent and channel.stop_mode == "signal":
        return "no entry jump was written and the quiet stop is unavailable, so no thread was stopped"
    if channel.stop_mode == "signal":
        why = f" ({channel.stop_fallback})" if channel.stop_fallback else ""
        return f"the signal stop was used{why}: it sees no thread's stack"
    return "the threads' stacks could not be read"


def error_count(diagnostics: list[dict]) -> int:
    """rustc's errors, without its closing "aborting due to N previous errors" (no span)."""
    return sum(
        1
        for d in diagnostics
        if d.get("level", "").startswith("error") and not d.get("message", "").startswith("aborting due to ")
    )


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


def _ms(start: float, end: float | None = None) -> float:
    return round(((end if end is not None else time.perf_counter()) - start) * 1000, 1)
