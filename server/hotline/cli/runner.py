"""The loop of one `hotline run`: saves and keys, one at a time, into the session."""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hotline.cli.changes import classify, error_files, fixable_by_a_save, watched
from hotline.cli.console import Console
from hotline.cli.keys import KEY_HINT, KEYS
from hotline.cli.printer import HumanPrinter, patched_line
from hotline.engine.build.workspace import owning_crate
from hotline.engine.errors import HotlineError, InternalError
from hotline.engine.session import Session
from hotline.engine.session_state import Event

SIGNAL_POLL_S = 0.25  # how soon a signal another thread took is acted on while idle


class Runner:
    """One `hotline run`: saves (from the watcher thread) and keys (from the key thread) go
    through one queue into one loop, so no two session operations ever run at once."""

    def __init__(self, console: Console, printer: Callable[[Event], None]) -> None:
        self.console = console
        self.printer = printer
        # ("changes", set of watchfiles changes), ("key", str) or ("watch-failed", exception)
        self.queue: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._held: tuple[str, Any] | None = None
        self.session: Session | None = None
        self.interactive = False
        self.hinted = False
        self.compile_failed = False  # the last fat build failed at a line a save can fix
        self.failed_files: set[Path] = set()  # the watched files its errors point at
        self.build_started = 0.0  # wall time the last fat build started
        self.waiting = False  # for that save
        self.last_patch: Event | None = None  # the newest `patched` event of this app process
        self.attached = "launched"  # how hotline got the app: "launched" or "re-attached to"
        self.app_pid: int | None = None

    def on_event(self, e: Event) -> None:
        kind = e["event"]
        if kind == "build-started":
            self.build_started = time.time()
        elif kind == "build-finished" and not e["ok"]:
            self.compile_failed = fixable_by_a_save(e.get("diagnostics") or [])
            self.failed_files = error_files(e.get("diagnostics") or [])
        elif kind in ("app-started", "app-adopted"):
            self.app_pid, self.last_patch = e["pid"], None
            self.attached = "launched" if kind == "app-started" else "re-attached to"
        elif kind == "patched":
            self.last_patch = e
        self.printer(e)
        if kind in ("app-started", "app-adopted") and self.interactive and not self.hinted:
            # Right under "app started", before the app draws: a line printed later would
            # scroll a full-screen app's first row away.
            self.hinted = True
            self.console.say(KEY_HINT, "dim")

    def start(self, operation: Callable[[], int]) -> bool:
        """A fat build and launch (or re-attach). On failure it prints why and returns False,
        except after a compile error, which waits for the save that fixes it."""
        self.compile_failed = False
        try:
            operation()
        except InternalError:
            return False  # already reported, by its `engine-error` event
        except HotlineError as e:
            self.console.error(str(e))
            self.waiting = self.compile_failed
            if self.waiting:
                self.console.say("waiting for a change to retry…", "warn")
            return self.waiting
        self.waiting = False
        return True

    def watch(self, stop: threading.Event) -> None:
        """The watcher thread: each batch of saved sources becomes one queue item.

        Once inotify is armed every save is an event; a save before that (during the fat
        build, or the launch) is found by its mtime, and only then is `watching` reported.
        watchfiles' own `watch()` cannot say when it is armed (it yields on a quiet timeout
        only, and an app writing its output files under the watched target folder is never
        quiet), so its Rust watcher is driven directly."""
        from watchfiles import Change
        from watchfiles._rust_notify import RustNotify

        assert self.session is not None
        roots = [self.session.workspace_root, *self.session.outside_packages.values()]
        try:  # outside packages too: their edits are refused, not missed
            with RustNotify([str(p) for p in roots], False, False, 300, True, False) as notify:
                missed = self._saved_before_watching()
                if missed:
                    self.queue.put(("changes", missed))
                self.on_event({"event": "watching", "roots": [str(p) for p in roots]})
                while not stop.is_set():
                    raw = notify.watch(50, 1, 500, stop)
                    if isinstance(raw, str):  # "timeout", "stop", or "signal" (for the main thread)
                        continue
                    changes = {
                        (Change(kind), path)
                        for kind, path in raw
                        if watched(path) or self._read_by_the_build(path)
                    }
                    if changes:
                        self.queue.put(("changes", changes))
        except Exception as e:  # inotify's watch limit, say: without a watcher there is no patching
            self.queue.put(("watch-failed", e))

    def _read_by_the_build(self, path: str) -> bool:
        """A file rustc read for the app that is not Rust (`include_str!`, `include_bytes!`)."""
        assert self.session is not None
        return "target" not in Path(path).parts and owning_crate(self.session.crates, Path(path)) is not None

    def _saved_before_watching(self) -> set[tuple[Any, str]]:
        """Sources saved after their crate was compiled and before the watcher started; after
        a failed build (no crate compiled), the files its errors point at saved since it began."""
        from watchfiles import Change

        assert self.session is not None
        target = self.session.target_dir
        if self.waiting:
            root = self.session.workspace_root
            return {
                (Change.modified, str(path))
                for name in self.failed_files
                if (path := root / name).exists() and path.stat().st_mtime > self.build_started
            }
        return {
            (Change.modified, str(path))
            for crate in self.session.crates
            for path in crate.sources()
            # not what the build itself wrote (a build script's generated code, say)
            if "target" not in path.parts
            and not path.is_relative_to(target)
            and path.exists()
            and path.stat().st_mtime > crate.compiled_at
        }

    def _wait(self) -> tuple[str, Any]:
        """The next queue item, waited for in short steps: Python runs a signal's handler
        (Ctrl-C, `kill`) in the main thread only, and when the kernel delivered the signal to
        another thread (the watcher's, say), a main thread blocked for good in `get()` would
        never wake to run it, and hotline would not stop."""
        while True:
            with contextlib.suppress(queue.Empty):
                return self.queue.get(timeout=SIGNAL_POLL_S)

    def _next(self) -> tuple[str, Any]:
        """The next queue item; saves queued behind each other are merged into one."""
        item, self._held = self._held or self._wait(), None
        if item[0] != "changes":
            return item
        changes = set(item[1])
        while self._held is None:
            try:
                more = self.queue.get_nowait()
            except queue.Empty:
                break
            if more[0] == "changes":
                changes |= more[1]
            else:
                self._held = more
        return "changes", changes

    def loop(self) -> int:
        """Acts on saves and keys until `q` (0), or a failure with no app left running (1)."""
        assert self.session is not None
        while True:
            kind, value = self._next()
            if kind == "key" and value == "q":
                return 0
            if kind == "watch-failed":
                self.console.error(f"cannot watch {self.session.workspace_root} for changes: {value}")
                return 1
            try:
                self._act(kind, value)
            except HotlineError as e:
                self.console.error(str(e))
            except Exception as e:
                self.console.internal_error(e)
                if not self.session.app_alive:
                    return 1

    def _act(self, kind: str, value: Any) -> None:
        session = self.session
        assert session is not None
        if kind == "changes":
            what = classify(value)
            if what == "restart":
                self._restart("Cargo.toml or build.rs changed")
            elif what == "patch" and not session.app_alive:
                self._restart(
                    "a source changed since the failed build" if self.waiting else "the app is not running"
                )
            elif what == "patch":
                session.patch([Path(p) for _, p in value])
        elif value == "r":
            self._restart("restart requested (r)")
        elif value == "p":
            self._show_last_patch()
        elif value == "h":
            paint = self.console.paint
            self.console.write(
                "\n".join(self.console.line(f"{paint(k, 'prefix')}  {what}") for k, what in KEYS.items())
            )

    def _restart(self, reason: str) -> None:
        assert self.session is not None
        self.printer({"event": "restarting", "reason": reason})
        self.expect_exit()
        self.start(self.session.restart)

    def expect_exit(self) -> None:
        """Hotline is about to stop the app: its exit is not reported as the app's own."""
        if self.app_pid is not None and isinstance(self.printer, HumanPrinter):
            self.printer.stopping.add(self.app_pid)

    def _show_last_patch(self) -> None:
        assert self.session is not None
        e = self.last_patch
        if e is None:
            self.console.say(f"no patch applied since the app was {self.attached}")
            return
        console = self.console
        out = [console.line(f"last patch, #{e['seq']}: {patched_line(console, e)}")]
        for name, diff in self.session.last_patch_disassembly():
            out.append(console.line(f"machine code of {name}:"))
            for line in diff.splitlines():
                header = line.startswith(("+++", "---"))
                out.append(console.paint(line, "dim" if header else {"+": "ok", "-": "error"}.get(line[:1])))
        console.write("\n".join(out))  # one write: the app's lines cannot come in between
