"""The language server's shared state: one object that every feature module reads and updates.

Engine calls (`Session.start/patch/stop/restart`) block for up to seconds, so they run in worker threads;
engine events arrive on those threads and are handed to the asyncio loop before anything is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.io_ import StdinAsyncReader, StdoutWriter, run_async
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from hotline.engine.errors import HotlineError
from hotline.engine.session import Session
from hotline.lsp import events
from hotline.lsp.progress import Progress
from hotline.lsp.speculation import Speculation
from hotline.lsp.stdio import pipe_reader

DISTRIBUTION = "hotline-reload"
try:
    from importlib.metadata import version as _pkg_version

    INSTALLED: str | None = _pkg_version(DISTRIBUTION)
except Exception:  # pragma: no cover - not installed
    INSTALLED = None
VERSION = INSTALLED or "0.0.0"

log = logging.getLogger("hotline.lsp")

STATUS = "hotline/status"


class HotlineLanguageServer(LanguageServer):
    def _start_io_async(self, stdin: Any = None, stdout: Any = None) -> None:
        """pygls's own, with stdin read on the event loop (stdio.py), not on a thread pool."""
        self._stop_event = threading.Event()
        self.protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))
        source = stdin or sys.stdin.buffer

        async def serve() -> None:
            reader = await pipe_reader(source) or StdinAsyncReader(source, self.thread_pool)
            await run_async(
                stop_event=self._stop_event,
                reader=reader,
                protocol=self.protocol,
                logger=log,
                error_handler=self.report_server_error,
            )

        try:
            asyncio.run(serve())
        except BrokenPipeError:
            log.error("the connection to the editor is lost: shutting down")
        except (KeyboardInterrupt, SystemExit):
            pass
        finally:
            self.shutdown()

    def __init__(self) -> None:
        super().__init__("hotline", VERSION)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.settings: dict[str, Any] = {}
        self.crate_dir: Path | None = None
        self.session: Session | None = None
        self.app_pid: int | None = None
        self.runtime: str | None = None  # the running app's runtime: "linked" or "injected" (app-started)
        self.state = "idle"
        self.last_patch: dict | None = None
        self.last_refused: dict | None = None
        self.last_saved_uri: str | None = None
        self.published: set[str] = set()
        self.engine_lock = asyncio.Lock()
        self.patching = False
        self.patch_pending = False
        self.saved_paths: set[Path] = set()  # saved since the last patch began
        self.root: str | None = None
        self.settings_changed = False  # new settings wait for the next run or restart
        self.patch_after_build = False
        self.patch_task: asyncio.Task | None = None  # asyncio keeps only weak references to tasks
        self.build_token: str | None = None
        self.patch_token: str | None = None
        self.work_progress = Progress(self)  # builds and patches (not pygls's progress(): one $/progress)
        self.patched_sources: dict[Path, str] = {}  # the saved texts the last patch was built from
        # the last patch's receipts (engine/report/receipts.py): function -> ("ran" | "not-run", HL1013 message)
        self.receipts: dict[str, tuple[str, str]] = {}
        self.refused_sources: dict[Path, str] = {}  # the saved texts the last refusal was found in
        self.stopped_by_user = False  # Stop was the last command: a save does not relaunch the app
        # what the last build or patch reported: rustc's diagnostics, Hotline's own (HL rules)
        self.diagnostics: tuple[list[dict], list[dict]] = ([], [])
        self.speculation = Speculation(self)  # builds the unsaved buffers while the user pauses
        self._session_lock = threading.Lock()  # one Session, whichever thread asks first

    @property
    def patch_on_save(self) -> bool:
        return self.settings.get("patchOnSave", True)

    @property
    def rustc_warnings(self) -> bool:
        return self.settings.get("rustcWarnings", False)

    @property
    def running(self) -> bool:
        return self.app_pid is not None

    @property
    def relaunch_on_save(self) -> bool:
        """A save relaunches the app, as `hotline run` does, when it was run and is no longer
        running (it exited or crashed, or its build failed), unless the user stopped it."""
        return (
            self.patch_on_save
            and self.session is not None
            and not self.running
            and not self.stopped_by_user
            and self.state != "building"
        )

    def get_session(self) -> Session:
        if self.crate_dir is None:
            raise HotlineError(
                'no Cargo crate found: open the folder of a Rust app or set the "crate" setting'
            )
        with self._session_lock:
            if self.session is None:
                self.session = Session(
                    self.crate_dir,
                    self.on_engine_event,
                    bin_name=self.settings.get("bin"),
                    app_args=list(self.settings.get("appArgs") or []),
                    allow_layout_changes=frozenset(self.settings.get("allowLayoutChanges") or []),
                    features=list(self.settings.get("features") or []),
                    profile=self.settings.get("profile"),
                    linker=self.settings.get("linker"),
                    entry_jumps=self.settings.get("entryJumps", True),
                )
        return self.session

    def on_engine_event(self, event: dict) -> None:
        """The Session's callback, on any thread: the event is handled on the loop (events.py)."""
        if self.loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed during exit
            self.loop.call_soon_threadsafe(events.handle_event, self, event)

    # -- outgoing -----------------------------------------------------------------------
    def status(self, state: str, **fields: Any) -> None:
        """Sends hotline/status (schemas/lsp-status.schema.json); None fields are left out, except the
        exitCode of a stopped app (null: killed by a signal or stopped by the user)."""
        self.state = state
        params = {"state": state}
        params.update(
            (k, v) for k, v in fields.items() if v is not None or (k == "exitCode" and state == "stopped")
        )
        if self.app_pid is not None:
            params["pid"] = self.app_pid  # while an app runs: to attach a debugger, say
            if self.runtime is not None:
                params["runtime"] = self.runtime  # linked (safe points) or injected
        self.protocol.notify(STATUS, params)

    def error(self, message: str) -> None:
        self.window_show_message(types.ShowMessageParams(type=types.MessageType.Error, message=message))
        self.status("error", message=message)

    def supports(self, path: str) -> bool:
        """Whether the client announced this capability (a dotted path in its capabilities)."""
        node: Any = self.client_capabilities
        for part in path.split("."):
            node = getattr(node, part, None)
            if node is None:
                return False
        return bool(node)

    def refresh_lenses(self) -> None:
        if self.supports("workspace.code_lens.refresh_support"):
            self.workspace_code_lens_refresh(None)

    # -- which files are the app's --------------------------------------------------------
    def in_crate(self, uri: str) -> bool:
        path = to_fs_path(uri)
        root = self.session.workspace_root if self.session is not None else self.crate_dir
        if not path or root is None or not path.endswith(".rs"):
            return False
        try:
            relative = Path(path).resolve().relative_to(root.resolve())
        except ValueError:
            return False
        return "target" not in relative.parts

    def is_file(self, uri: str, relative: str) -> bool:
        path = to_fs_path(uri)
        return bool(path and self.crate_dir and Path(path).resolve() == (self.crate_dir / relative).resolve())
