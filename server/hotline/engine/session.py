"""One app under Hotline: fat build, launch, and a patch per save.

Front ends (the CLI, the language server) drive a `Session` and receive its progress as
event dicts (specified in `schemas/events.schema.json`) through the `on_event` callback.
`Session` is the coordinator: the state it shares with its stages is `SessionState`
(session_state.py), and each step is its stage's module.
"""

from __future__ import annotations

import os
import subprocess
from functools import partial
from pathlib import Path
from typing import Any

from hotline.engine import save_patch
from hotline.engine.analyse.demangle import demangle
from hotline.engine.app import app_launch, app_record, handover, jump_retry
from hotline.engine.build.fat_build import fat_build
from hotline.engine.errors import InternalError
from hotline.engine.report.disassembly import function_diff
from hotline.engine.session_state import EventSink, Outcome, SessionState

#: Files whose change needs a full rebuild and relaunch (rule HL1006), not a patch.
RESTART_FILES = ("Cargo.toml", "Cargo.lock", "build.rs")


class Session(SessionState):
    """The API front ends drive: build, launch or re-attach, stop, detach, and a patch per save."""

    def __init__(self, crate_dir: Path, on_event: EventSink, **settings: Any) -> None:
        """`settings`: those of `SessionState`."""
        super().__init__(crate_dir, on_event, **settings)
        # each speculative build's patch is planned the moment it is done (save_patch.py)
        self.speculative.plan_ahead = partial(save_patch.plan_ahead, self)

    # -- fat build -----------------------------------------------------------------
    def fat_build(self) -> Path:
        """Builds the app keeping every symbol (fat_build.py); returns the executable to launch."""
        built = fat_build(self.build_spec, self.on_event)
        self.build_id, self.exe, self.crates = built.build_id, built.exe, built.crates
        self.objects, self.builds, self.build_folders = built.objects, built.builds, built.folders
        return built.executable

    # -- the app ---------------------------------------------------------------------
    def launch(self, executable: Path) -> int:
        """Starts the app attached to a fresh patch channel; returns its pid (app_launch.py)."""
        return app_launch.launch(self, executable)

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
        running.stop_followers()

    def detach(self, reap_after_s: float | None = None) -> None:
        """Leaves the app running for the next engine to re-attach to (`handover.py`) and lets
        go of the crate. With `reap_after_s`, a detached process stops the app if no engine
        has re-attached by then (an editor that closed, not one that reloaded)."""
        self.speculative.cancel()
        with self.patch_lock:  # never in the middle of a patch
            running, self.running = self.running, None
        if running is None:
            self.lock.release()
            return
        if running.output is not None:
            running.output.stop()
        running.channel.close(keep_path=True)
        running.stop_followers()
        self.lock.release()
        if reap_after_s is not None:
            handover.spawn_reaper(self.target_dir, reap_after_s)

    def start(self) -> int:
        """Re-attaches to the app an earlier engine left running, else fat build and launch."""
        with self.reported("starting the app"):
            app_launch.own_crate(self)
            adopted = handover.adopt(self)
            if adopted is None:
                return self.launch(self.fat_build())
            if self.pending.jumps and self.running is not None:  # left by the engine before
                jump_retry.schedule(self, self.running)
            return adopted

    def restart(self, clean: bool = False) -> int:
        """Full rebuild and relaunch; `clean` first discards the workspace's build artifacts."""
        with self.reported("restarting the app"):
            app_launch.own_crate(self)
            self._stop_app()
            if clean:
                subprocess.run(
                    ["cargo", "clean", "--package", self.package["name"]],
                    cwd=self.crate_dir,
                    env=os.environ | {"CARGO_TARGET_DIR": str(self.target_dir)},
                    capture_output=True,
                )
            return self.launch(self.fat_build())

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
        with self.patch_lock:
            try:
                with self.reported("patching"):
                    outcome = save_patch.patch(self, changed or [])
                    save_patch.prune_patch_dirs(self)
                    handover.save(self)  # outcomes that sent nothing: accepted builds, say
                    return outcome
            except InternalError as e:
                return Outcome("engine-error", {"event": "engine-error", "message": str(e)})

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
