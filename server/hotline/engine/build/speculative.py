"""Speculative builds: the crates a save would rebuild, compiled from the editor's unsaved
texts while the user pauses, so that the save of exactly those texts skips rustc.

The builder decides what to build and when: at most one build at a time, a newer text
killing the one in flight; and what becomes of a build: a save adopts it, or it is thrown
away. A build compiles in a shadow of the workspace (shadow_workspace.py) with the captured
rustc commands rewritten for it (shadow_args.py), so that its objects are a save build's
byte for byte; speculative_build.py runs one.

A result is keyed by content: the digest of every file the build read. A save uses it only
if the files on disk have exactly those contents (and the linked rlibs are unchanged).

Once a build is done, `plan_ahead` (the session's) diffs and links its objects against what
the app runs (patch_plan.py), so a save of those texts only sends the patch.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hotline.engine.build.shadow_workspace import ShadowWorkspace, digest_of, file_digest, read_text
from hotline.engine.build.speculative_build import SpeculativeBuild, linked_rlibs
from hotline.engine.build.workspace import Crate, depinfo_entries, dirty_crates, owning_crate

log = logging.getLogger("hotline")


@dataclass
class Speculated:
    """A speculative build a save uses: rustc's stderr, when the files were compared, and
    the patch planned from it ahead of the save, if any (`plan_ahead`'s result)."""

    stderr: list[str]
    hashed_at: float
    plan: Any = None


class SpeculativeBuilder:
    """At most one background rustc at a time, niced; a newer start kills the one in flight."""

    def __init__(
        self,
        target_dir: Path,
        workspace_root: Path,
        plan_ahead: Callable[[dict[str, Path]], Any] | None = None,
        on_stats: Callable[[dict], None] | None = None,
        on_ended: Callable[[str, list[str]], None] | None = None,
    ) -> None:
        """`plan_ahead(objects folder per crate key)` runs after each build that a save
        could use; what it returns comes back with the build (`Speculated.plan`).
        `on_stats(stats)` is called when a build ends, is used, or is thrown away;
        `on_ended(outcome, rustc's stderr)` when rustc ran to its end ("ok" or "failed")."""
        self.root = workspace_root.resolve()
        self.plan_ahead = plan_ahead
        self.on_stats = on_stats
        self.on_ended = on_ended
        self.shadow = ShadowWorkspace(target_dir, self.root)
        self.objects = target_dir / "shadow-objects"
        self._lock = threading.Lock()  # guards the fields below and each build's proc
        self._serial = threading.Lock()  # one build writes the shadow and runs rustc at a time
        self._current: SpeculativeBuild | None = None  # the newest build: running, or done and kept
        self._seq = 0
        self._fresh = True  # the objects folder may hold an earlier engine's leftovers
        self.history: deque[dict] = deque(maxlen=200)  # finished builds: outcome, ms, cpu_s
        self.stats = {"builds": 0, "ended": 0, "used": 0, "killed": 0, "cpu_s_used": 0.0, "cpu_s_wasted": 0.0}

    # -- while the user types ----------------------------------------------------------
    def start(self, crates: list[Crate], overlays: dict[Path, str]) -> bool:
        """Compiles, from `overlays` (unsaved texts) on a thread, the crates a save of them
        would rebuild: the edited crates and those that depend on them, binary last. Unless
        a build of the same texts is under way or done. Returns whether one is: nothing is
        built without a text of the app's crates, nor when a proc-macro would be rebuilt.
        A text of no crate's sources is left out (a test, a crate the app does not use: no
        build reads it), unless it lies in a crate's source folder: it may be a module that
        a `mod` line typed in its crate now reads."""
        texts = {p.resolve(): t.encode() for p, t in overlays.items()}
        owners = {p: owner.key for p in texts if (owner := owning_crate(crates, p)) is not None}
        folders = [f for c in crates if (f := c.source_folder) is not None]
        texts = {p: t for p, t in texts.items() if p in owners or any(p.is_relative_to(f) for f in folders)}
        chain = self._chain(crates, texts, set(owners.values())) if texts else None
        plan = self._plan(chain, texts) if chain is not None else None
        with self._lock:
            current = self._current
            if plan is not None and current is not None and self._same(current, plan[0]):
                return True
            self._current = None
            if current is not None:
                self._drop(current)
            if plan is None or chain is None:
                return False
            self._seq += 1
            build = SpeculativeBuild(chain, texts, plan[0], plan[1], self.objects / str(self._seq))
            self._current = build
            self.stats["builds"] += 1
        threading.Thread(target=self._work, args=(build,), daemon=True).start()
        return True

    @staticmethod
    def _same(build: SpeculativeBuild, signature: tuple) -> bool:
        """The buffers did not change since `build` started, nor did the files and rlibs."""
        return not build.cancelled and build.signature == signature and build.outcome in ("pending", "ok")

    def _chain(self, crates: list[Crate], texts: dict[Path, bytes], edited: set[str]) -> list[Crate] | None:
        """The crates a save of `texts` would rebuild, from the `edited` ones whose sources
        they are, or None: no text is a crate's source (a new module alone changes no
        build), a text lies outside the workspace (the shadow holds none), or a proc-macro
        is among them (the save refuses it, HL1006)."""
        if not crates or crates[-1].kind != "bin" or not all(p.is_relative_to(self.root) for p in texts):
            return None
        chain = dirty_crates(crates, edited)
        return None if not edited or any(c.kind == "proc-macro" for c in chain) else chain

    def _plan(self, chain: list[Crate], texts: dict[Path, bytes]) -> tuple | None:
        """(signature, rlib stats) of a build, or None when speculation would be unsound."""
        disk = []
        for crate in chain:
            cwd = Path(crate.record["cwd"]).resolve()
            if not cwd.is_relative_to(self.root):
                return None
            for entry in depinfo_entries(read_text(crate.out_dir / f"{crate.stem}.d")):
                path = Path(os.path.normpath(cwd / entry))
                if not Path(entry).is_absolute() and not path.is_relative_to(self.root):
                    return None  # a relative path out of the root would leave the shadow
                if path not in texts:
                    with contextlib.suppress(OSError):
                        st = path.stat()
                        disk.append((path, st.st_size, st.st_mtime_ns))
        externs = linked_rlibs(chain)
        overlaid = tuple(sorted((p, digest_of(t)) for p, t in texts.items()))
        return (overlaid, tuple(disk), externs, tuple(id(c.record) for c in chain)), externs

    def _work(self, build: SpeculativeBuild) -> None:
        with self._serial:
            try:
                if not build.cancelled:
                    if self._fresh:
                        shutil.rmtree(self.objects, ignore_errors=True)
                        self._fresh = False
                    build.run(self.shadow, self._lock)
            except Exception as e:  # a background build: it only ever fails to be used
                build.stderr = [f"{type(e).__name__}: {e}"]
                log.debug("speculative build failed", exc_info=True)
            finally:
                self._finish(build)
        try:
            if self.plan_ahead is not None and build.outcome == "ok" and not build.cancelled:
                build.plan = self.plan_ahead({c.key: build.objects(c) for c in build.chain})
        except Exception:  # the save then plans the patch itself
            log.debug("planning a speculative build's patch failed", exc_info=True)
        finally:
            build.planned.set()

    def _finish(self, build: SpeculativeBuild) -> None:
        with self._lock:  # `done` is set under the lock: `_drop` sees the outcome or the process
            if build.outcome == "pending":
                build.outcome = "cancelled" if build.cancelled else "failed"
            elif build.cancelled and build.outcome == "ok":
                build.outcome = "superseded"
            if build.outcome != "ok":
                self._waste(build)
            if build.outcome == "killed":
                self.stats["killed"] += 1
            self.stats["ended"] += 1
            ms = round((time.perf_counter() - build.started) * 1000, 1)
            self.history.append({"outcome": build.outcome, "ms": ms, "cpu_s": round(build.cpu_s, 3)})
            self._report()
            if self.on_ended is not None and build.outcome in ("ok", "failed") and not build.cancelled:
                self.on_ended(build.outcome, build.stderr)
            build.ready.set()
            build.done.set()
            if build.outcome != "ok":
                build.planned.set()

    def _report(self) -> None:
        """Under `_lock`: the running totals, to `on_stats`."""
        if self.on_stats is not None:
            self.on_stats({k: round(v, 3) if isinstance(v, float) else v for k, v in self.stats.items()})

    def _waste(self, build: SpeculativeBuild) -> None:
        self.stats["cpu_s_wasted"] += build.cpu_s
        shutil.rmtree(build.folder, ignore_errors=True)

    def _drop(self, build: SpeculativeBuild) -> None:
        """Under `_lock`: the build will not be used. A running rustc is killed; a finished
        build's objects are deleted (its CPU counted as thrown away)."""
        if build.cancelled:
            return
        build.cancelled = True
        if build.done.is_set():
            if build.outcome == "ok":
                self._waste(build)
                self._report()
        elif build.proc is not None and not build.reaped:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(build.proc.pid, signal.SIGKILL)

    @property
    def last_build_ms(self) -> float | None:
        """How long the newest finished build took, start to objects ready (None before one)."""
        with self._lock:
            done = [h["ms"] for h in self.history if h["outcome"] in ("ok", "superseded")]
        return done[-1] if done else None

    @property
    def rustc_pid(self) -> int | None:
        """The speculative rustc running now, if any (to check that it is niced, or killed)."""
        with self._lock:
            build = self._current
            if build is None or build.proc is None or build.reaped:
                return None
            return build.proc.pid

    def interrupt(self) -> None:
        """The texts changed again: a build in flight is of stale text and is killed. A
        finished one is kept: an undo may bring its text back before the save."""
        with self._lock:
            current = self._current
            if current is not None and not current.done.is_set():
                self._current = None
                self._drop(current)

    def cancel(self) -> None:
        """Kills the build in flight and forgets any result (the app stopped or restarts)."""
        with self._lock:
            current, self._current = self._current, None
            if current is not None:
                self._drop(current)

    # -- on save -------------------------------------------------------------------------
    def take(self, dirty: list[Crate], folders: dict[str, Path]) -> Speculated | None:
        """The speculative build of exactly the files now on disk, each crate's objects
        moved to its folder in `folders`; waits for it if it is still running. None
        otherwise (a build that cannot match is killed, so the save build has the CPU)."""
        with self._lock:
            build, self._current = self._current, None
        if build is None:
            return None
        usable = [id(c.record) for c in dirty] == [id(c.record) for c in build.chain]
        if usable:
            build.ready.wait()
            usable = (
                build.prepared is not None
                and self._on_disk(build.prepared)
                and linked_rlibs(build.chain) == build.externs
            )
        if not usable:
            self._keep_or_drop(build)
            return None
        build.hurry()
        build.done.wait()
        build.planned.wait()  # soon: planning needs the session, which this save holds
        hashed_at = time.time()
        if build.outcome != "ok" or build.key is None or not self._on_disk(build.key):
            self._keep_or_drop(build)
            return None
        for crate in build.chain:
            self.shadow.adopt(crate, build.depinfo[crate.key])
            folders[crate.key].parent.mkdir(parents=True, exist_ok=True)
            build.objects(crate).rename(folders[crate.key])
        with self._lock:
            self.stats["used"] += 1
            self.stats["cpu_s_used"] += build.cpu_s
            self._report()
        return Speculated(build.stderr, hashed_at, build.plan)

    def _keep_or_drop(self, build: SpeculativeBuild) -> None:
        """A finished build stays for a later save (of the other files it overlaid, say);
        a running one is killed."""
        with self._lock:
            if build.done.is_set() and build.outcome == "ok" and self._current is None:
                self._current = build
            elif build is not self._current:
                self._drop(build)

    @staticmethod
    def _on_disk(digests: dict[Path, bytes]) -> bool:
        return all(file_digest(path) == digest for path, digest in digests.items())
