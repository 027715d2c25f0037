"""The Hotline language server (pygls 2): run the app, patch it on save, report back.

Engine calls (`Session.start/patch/stop/restart`) block for up to seconds, so they run in worker threads;
engine events arrive on those threads and are handed to the asyncio loop before anything is sent.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import platform
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.io_ import StdinAsyncReader, StdoutWriter, run_async
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from hotline.engine import schemas
from hotline.engine.app import handover
from hotline.engine.build.rustc_diagnostics import error_count
from hotline.engine.errors import EngineBusy, HotlineError, InternalError
from hotline.engine.session import RESTART_FILES, Session
from hotline.lsp import lenses, logs
from hotline.lsp.diagnostics import group_by_uri, rude_edit_diagnostic
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
OUTPUT = "hotline/output"
RELAUNCH_MESSAGE = "the app is not running: full rebuild and relaunch"
TAKE_OVER = "Take over"
TAKE_OVER_TIMEOUT_S = 15.0
REATTACH_GRACE_S = 10.0  # how long an app outlives its server, waiting for the next one
LIVE_SETTINGS = {  # they apply at once
    "rustcWarnings",
    "patchOnSave",
    "allowLayoutChanges",
    "speculativeBuilds",
    "speculativeDelayMs",
    "speculativeDiagnostics",
}


def environment() -> str:
    """Which Python and which `hotline` package this server runs: logged at start-up."""
    import hotline

    package = Path(hotline.__file__).resolve().parent
    dist = f"{DISTRIBUTION} {INSTALLED}" if INSTALLED else f"no {DISTRIBUTION} distribution installed"
    return (
        f"Hotline language server {VERSION}: Python {platform.python_version()} ({sys.executable}), "
        f"hotline package {package} ({dist})"
    )


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
        self._token_seq = 0
        self._progress_created: dict[str, asyncio.Future] = {}  # token -> the client's answer to create
        self.patched_sources: dict[Path, str] = {}  # the saved texts the last patch was built from
        # the last patch's receipts (engine/report/receipts.py): function -> ("ran" | "not-run", HL1013 message)
        self.receipts: dict[str, tuple[str, str]] = {}
        self.refused_sources: dict[Path, str] = {}  # the saved texts the last refusal was found in
        self.stopped_by_user = False  # Stop was the last command: a save does not relaunch the app
        # what the last build or patch reported: rustc's diagnostics, Hotline's own (HL rules)
        self.diagnostics: tuple[list[dict], list[dict]] = ([], [])
        self.speculation = Speculation(self)  # builds the unsaved buffers while the user pauses
        self._session_lock = threading.Lock()  # one Session, whichever thread asks first

    # -- settings ---------------------------------------------------------------------
    def configure(self, options: Any, root: str | None) -> list[str]:
        """Reads initializationOptions; returns problems to show the user (empty when all is well)."""
        if isinstance(options, dict) and isinstance(options.get("hotline"), dict):
            options = options["hotline"]
        options = options or {}
        problems = schemas.problems("settings", options)
        if problems:
            return ["Hotline: invalid settings: " + "; ".join(problems)]
        self.settings = dict(options)
        base = Path(root) if root else Path.cwd()
        crate = Path(options["crate"]) if options.get("crate") else base
        if not crate.is_absolute():
            crate = base / crate
        if not (crate / "Cargo.toml").is_file():
            return [f'Hotline: no Cargo.toml in {crate}: set the "crate" setting to the crate of your app']
        self.crate_dir = crate.resolve()
        for key, value in (options.get("env") or {}).items():
            os.environ[key] = value
        return []

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

    def _supports(self, path: str) -> bool:
        node: Any = self.client_capabilities
        for part in path.split("."):
            node = getattr(node, part, None)
            if node is None:
                return False
        return bool(node)

    def progress_begin(
        self, kind: str, title: str, message: str | None = None, percentage: int | None = None
    ) -> str | None:
        if not self._supports("window.work_done_progress"):
            return None
        self._token_seq += 1
        token = f"hotline-{kind}-{os.getpid()}-{self._token_seq}"
        # The client must have answered window/workDoneProgress/create before the token is
        # used: begin, reports and end wait for its answer, in order (none if it failed).
        self._progress_created[token] = asyncio.ensure_future(self.work_done_progress.create_async(token))
        begin = types.WorkDoneProgressBegin(title=title, message=message, percentage=percentage)
        self._progress_send(token, lambda: self.work_done_progress.begin(token, begin))
        return token

    def _progress_send(self, token: str, send: Any, last: bool = False) -> None:
        created = self._progress_created.get(token)
        if created is None:
            return
        if last:
            del self._progress_created[token]

        def sent(future: asyncio.Future) -> None:  # done callbacks run in the order they were added
            if not future.cancelled() and future.exception() is None:
                send()
            elif last and not future.cancelled():
                log.info("progress %s not created: %s", token, future.exception())

        created.add_done_callback(sent)

    def progress_report(self, token: str | None, message: str, percentage: int) -> None:
        if token is not None:
            report = types.WorkDoneProgressReport(message=message, percentage=percentage)
            self._progress_send(token, lambda: self.work_done_progress.report(token, report))

    def progress_end(self, token: str | None, message: str | None = None) -> None:
        if token is not None:
            end = types.WorkDoneProgressEnd(message=message)
            self._progress_send(token, lambda: self.work_done_progress.end(token, end), last=True)

    def refresh_lenses(self) -> None:
        if self._supports("workspace.code_lens.refresh_support"):
            self.workspace_code_lens_refresh(None)

    def publish(self, rustc: list[dict], own: list[dict] | None = None) -> None:
        """Publishes the diagnostics of a build or patch, rustc's and Hotline's own (HL rules, in
        rustc's shape); clears files that had some and no longer do. rustc's warnings only with
        the setting rustcWarnings: rust-analyzer reports them already, and they block nothing."""
        assert self.crate_dir is not None
        self.diagnostics = (rustc, own or [])
        if not self.rustc_warnings:
            rustc = [d for d in rustc if d.get("level", "").startswith("error")]
        groups = group_by_uri(rustc + (own or []), self.crate_dir)
        for uri in self.published - groups.keys():
            self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))
        for uri, items in groups.items():
            self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=items))
        self.published = set(groups)

    # -- engine events (any thread) -> loop ------------------------------------------------
    def on_engine_event(self, event: dict) -> None:
        if self.loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed during exit
            self.loop.call_soon_threadsafe(self.handle_event, event)

    def handle_event(self, event: dict) -> None:
        try:
            self._handle_event(event)
        except Exception:  # never let one event break the stream
            log.exception("handling engine event %s", event.get("event"))

    def _handle_event(self, event: dict) -> None:
        kind = event["event"]
        if kind == "app-output":
            self.protocol.notify(OUTPUT, {"stream": event["stream"], "line": event["line"]})
        elif kind == "build-started":
            self.status("building", message=f"{event['kind']} build")
            self.progress_end(self.build_token)
            self.build_token = self.progress_begin("build", "Hotline: building", f"0/{event['total']}", 0)
        elif kind == "build-progress":
            if self.build_token is not None:
                total = max(1, event["total"])
                self.progress_report(
                    self.build_token,
                    f"{event['done']}/{event['total']} {event['crate']}",
                    min(100, event["done"] * 100 // total),
                )
        elif kind == "build-finished":
            self.progress_end(self.build_token, "done" if event["ok"] else "failed")
            self.build_token = None
            self.publish(event.get("diagnostics") or [])
            if not event["ok"]:
                self.status("error", ms=event.get("ms"), message="the build failed")
        elif kind == "orphan-stopped":
            message = f"Hotline stopped the app (pid {event['pid']}) an earlier server left running"
            if event.get("reason"):
                message += f": {event['reason']}"
            self.window_log_message(types.LogMessageParams(type=types.MessageType.Info, message=message))
        elif kind == "engine-error":
            self.progress_end(self.build_token, "failed")
            self.progress_end(self.patch_token, "failed")
            self.build_token = self.patch_token = None
            self.error(
                f"Hotline internal error: {event['message']} (details: {event['log']}); "
                "the app keeps running its last good code"
            )
        elif kind == "speculative-build" and self.settings.get("speculativeDiagnostics", False):
            self.publish(event["diagnostics"], self.diagnostics[1])  # the typed text's errors, or none
        elif kind == "speculation":  # a trace in the client's log, like rust-analyzer's
            message = (
                f"Hotline speculative builds: {event['builds']} started, {event['ended']} ended, "
                f"{event['used']} used by a save, "
                f"{event['killed']} killed; rustc CPU {event['cpu_s_used']:.2f} s used, "
                f"{event['cpu_s_wasted']:.2f} s thrown away"
            )
            self.window_log_message(types.LogMessageParams(type=types.MessageType.Log, message=message))
        elif kind == "debug-info-failed":
            message = f"Hotline [{event['rule']}]: {event['message']}"
            self.window_log_message(types.LogMessageParams(type=types.MessageType.Warning, message=message))
        elif kind in ("app-started", "app-adopted"):
            self.app_pid, self.runtime = event["pid"], event["runtime"]
            self.last_patch = self.last_refused = None
            if kind == "app-adopted":  # an app an earlier engine left running: no build, same state
                message = f"Hotline re-attached to the running app (pid {event['pid']})"
                self.window_log_message(types.LogMessageParams(type=types.MessageType.Info, message=message))
            self.status("running")
            self.refresh_lenses()
        elif kind == "app-exited":
            if event["pid"] == self.app_pid:
                self.app_pid = None
                code = event.get("code")
                message = (
                    f"killed by signal {event['signal']}"
                    if event.get("signal")
                    else f"exited with code {code}"
                )
                self.status("stopped", exitCode=code, message=message)
                self.refresh_lenses()
        elif kind == "patch-started":
            self.status("patching")
            self.patch_token = self.progress_begin("patch", "Hotline: patching", f"patch #{event['seq']}")
        elif kind in ("patched", "compile-error", "no-change", "patch-refused"):
            self._patch_outcome(kind, event)
        elif kind == "jumps-landed":
            landed = f"entry jumps landed: {', '.join(event['functions'])} now run the new code"
            last = self.last_patch or {}
            self.status("patched", ms=last.get("ms"), functions=last.get("functions"), message=landed)
        elif kind in ("ran", "not-run"):
            self._receipt(kind, event)

    def _receipt(self, kind: str, event: dict) -> None:
        """A receipt of the last patch: on its lenses, and quietly in the status (no popup)."""
        if self.last_patch is None or event["seq"] != self.last_patch["seq"]:
            return
        was_not_run = any(self.receipts.get(f, ("", ""))[0] == "not-run" for f in event["functions"])
        if kind == "ran":
            self.receipts.update((f, ("ran", "")) for f in event["functions"])
        else:
            self.receipts.update(
                (f, ("not-run", w["message"]))
                for f, w in zip(event["functions"], event["warnings"], strict=True)
            )
        not_run = [f for f, (state, _) in self.receipts.items() if state == "not-run"]
        if kind == "not-run" or (was_not_run and self.state == "patched"):
            self.status(
                "patched",
                ms=self.last_patch["ms"],
                functions=self.last_patch["functions"] + self.last_patch.get("added", []),
                message=lenses.not_run_status(not_run) or lenses.live_status(self.last_patch),
            )
        self.refresh_lenses()

    def _patch_outcome(self, kind: str, event: dict) -> None:
        rude = [e for e in event.get("rude_edits", []) + event.get("warnings", []) if e.get("file")]
        if "diagnostics" in event or rude:
            self.publish(
                event.get("diagnostics") or [], [rude_edit_diagnostic(e, self.crate_dir) for e in rude]
            )
        if kind == "patched":
            self.last_patch, self.last_refused = event, None
            self.receipts = {}
            self.patched_sources = self._saved_texts(event)
            self.progress_end(self.patch_token, f"patched in {event['ms']:g} ms")
            self.status(
                "patched",
                ms=event["ms"],
                functions=event["functions"] + event.get("added", []),
                message=lenses.live_status(event),
            )
        elif kind == "compile-error":
            errors = error_count(event["diagnostics"])
            self.progress_end(self.patch_token, "compile error")
            self.status(
                "error", ms=event["ms"], message=f"compile error ({errors} error{'s' * (errors != 1)})"
            )
        elif kind == "no-change":
            self.progress_end(self.patch_token, "no change")
            self.status("running" if self.running else "stopped", ms=event["ms"], message="no code change")
        else:
            self.last_refused = event
            self.refused_sources = self._refused_texts(event)
            self.progress_end(self.patch_token, "refused")
            self.status("error", message=f"patch refused ({event['rule']}): {event['reason']}")
        self.patch_token = None
        self.refresh_lenses()

    # -- actions ------------------------------------------------------------------------------
    async def run_app(self, restart: bool = False, clean: bool = False) -> dict:
        self.stopped_by_user = False
        async with self.engine_lock:
            try:
                if self.settings_changed and self.session is not None:
                    self.app_pid = None  # the old app's exit is expected: no "stopped" status
                    await asyncio.to_thread(self.session.stop)
                    self.session = None
                self.settings_changed = False
                session = self.session or await asyncio.to_thread(self.get_session)
                if not restart and self.running:  # re-attached while this Run waited for the lock
                    return {"ok": True, "pid": self.app_pid, "message": "already running"}
                if restart or session.running is not None:  # running, or exited: its channel is closed
                    self.app_pid = None  # the old app's exit is expected: no "stopped" status
                    pid = await asyncio.to_thread(session.restart, clean)
                else:
                    pid = await asyncio.to_thread(session.start)
            except EngineBusy as e:
                return await self._offer_take_over(e)
            except InternalError as e:  # already shown: the engine-error event came first
                return {"ok": False, "message": str(e)}
            except HotlineError as e:
                self.error(str(e))
                return {"ok": False, "message": str(e)}
            except Exception as e:  # channel errors and the like
                log.exception("starting the app")
                await asyncio.to_thread(self._kill_orphan)
                self.error(f"Hotline could not start the app: {e}")
                return {"ok": False, "message": str(e)}
            if self.patch_after_build:  # saves that came while the app was being built
                self.patch_after_build = False
                self.request_patch()
            return {"ok": True, "pid": pid}

    async def _offer_take_over(self, busy: EngineBusy) -> dict:
        """Another engine (a terminal's `hotline run`, another window) owns the app: offer to
        take it over. It is asked to let go (SIGUSR1) and this server re-attaches to the app,
        state intact. Called with the engine lock held."""
        self.status("error", message=str(busy))
        choice = await self.window_show_message_request_async(
            types.ShowMessageRequestParams(
                type=types.MessageType.Warning,
                message=f"Hotline: {busy}",
                actions=[types.MessageActionItem(title=TAKE_OVER)],
            )
        )
        if choice is None or choice.title != TAKE_OVER:
            return {"ok": False, "message": str(busy)}
        session = self.get_session()
        with contextlib.suppress(ProcessLookupError):
            os.kill(busy.engine_pid, signal.SIGUSR1)
        deadline = time.monotonic() + TAKE_OVER_TIMEOUT_S
        while session.lock.acquire() is not None:
            if time.monotonic() > deadline:
                message = f"the other Hotline (pid {busy.engine_pid}) did not let go of the app"
                self.error(f"Hotline: {message}")
                return {"ok": False, "message": message}
            await asyncio.sleep(0.1)
        try:
            pid = await asyncio.to_thread(session.start)
        except HotlineError as e:
            if not isinstance(e, InternalError):
                self.error(str(e))
            return {"ok": False, "message": str(e)}
        return {"ok": True, "pid": pid}

    async def reattach_if_left_running(self) -> None:
        """At start-up: an app an earlier server (before a window reload, `:LspRestart`, a
        crash) or another engine left running is re-attached to at once, state intact."""
        try:
            session = await asyncio.to_thread(self.get_session)
        except HotlineError:
            return  # reported when the user runs the app
        if handover.left_running(session.app_record) is not None and not self.running:
            await self.run_app()

    def hand_over(self) -> None:
        """Another engine asked for the app (SIGUSR1): let go of it, leaving it running."""
        session = self.session
        if session is None:
            return
        self.app_pid = None
        session.detach()
        self.status("stopped", exitCode=None, message="another Hotline took the app over")
        self.refresh_lenses()

    def _kill_orphan(self) -> None:
        """The engine leaves the app running when it never connects to the patch channel: end it."""
        pid, self.app_pid = self.app_pid, None
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)

    async def stop_app(self) -> dict:
        self.stopped_by_user = True
        async with self.engine_lock:
            if self.session is None:
                return {"ok": True}
            was_running = self.running
            self.app_pid = None
            await asyncio.to_thread(self.session.stop)
            if was_running:
                self.status("stopped", exitCode=None, message="stopped")
                self.refresh_lenses()
            return {"ok": True}

    def request_patch(self) -> None:
        """Patches now, or once more after the patch in flight (saves meanwhile coalesce)."""
        if self.patching:
            self.patch_pending = True
            return
        self.patching = True
        self.patch_task = asyncio.ensure_future(self._patch_loop())

    async def _patch_loop(self) -> None:
        try:
            while True:
                self.patch_pending = False
                async with self.engine_lock:
                    if self.session is None or not self.running:
                        return
                    saved, self.saved_paths = sorted(self.saved_paths), set()
                    try:
                        await asyncio.to_thread(self.session.patch, saved)
                    except HotlineError as e:
                        self.progress_end(self.patch_token, "failed")
                        self.patch_token = None
                        self.error(str(e))
                    except Exception as e:
                        log.exception("patching")
                        self.progress_end(self.patch_token, "failed")
                        self.patch_token = None
                        self.error(f"Hotline patch failed: {e}")
                if not self.patch_pending:
                    return
        finally:
            self.patching = False

    def last_patch_markdown(self) -> str:
        if self.last_refused is not None:
            e = self.last_refused
            text = f"### Patch refused ({e['rule']})\n\n{e['reason']}\n"
            if e.get("symbol"):
                text += f"\nSymbol: `{e['symbol']}`\n"
            return text
        e = self.last_patch
        if e is None:
            return "No patch applied yet."
        speculative = " (compiled while you typed)" if e.get("speculative") else ""
        lines = [f"### Patch #{e['seq']}: {e['ms']:g} ms{speculative}", ""]
        if e.get("planned_ahead"):
            lines += ["Compiled, diffed and linked while you typed: the save only sent it.", ""]
        if e["functions"]:
            lines += ["Changed functions:", *(f"- `{f}`" for f in e["functions"]), ""]
        if e.get("added"):
            lines += ["Added functions:", *(f"- `{f}`" for f in e["added"]), ""]
        lines += ["| phase | ms |", "|---|---|", *(f"| {k} | {v:g} |" for k, v in e["phases"].items())]
        for name, diff in self.session.last_patch_disassembly() if self.session else []:
            lines += ["", f"#### `{name}`", "", "```diff", diff, "```"]
        return "\n".join(lines) + "\n"

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

    def _saved_texts(self, event: dict) -> dict[Path, str]:
        """The texts of the files a patch was built from (its functions' files, the saved file):
        its lenses are moved from these to the editor's current text."""
        files = {Path(loc["file"]).resolve() for loc in event.get("locations") or []}
        if self.last_saved_uri:
            files.add(Path(to_fs_path(self.last_saved_uri) or "").resolve())
        out = {}
        for file in files:
            with contextlib.suppress(OSError):
                out[file] = file.read_text()
        return out

    def _refused_texts(self, event: dict) -> dict[Path, str]:
        """The texts of the files a refusal's rude edits are in: its restart-required lenses
        are moved from these to the editor's current text."""
        out = {}
        for edit in event.get("rude_edits") or []:
            if edit.get("file") and self.crate_dir is not None:
                file = (self.crate_dir / edit["file"]).resolve()
                with contextlib.suppress(OSError):
                    out[file] = file.read_text()
        return out

    def refused_lines(self, uri: str, source: str, edits: list[dict]) -> list[tuple[int, dict]]:
        """Where the rude edits of the last refusal that are in this file (`edits`) are in the
        editor's text: their 0-based lines followed through the edits made since the refusal
        (lines inserted above), without those whose own line was changed or deleted."""
        before = self.refused_sources.get(Path(to_fs_path(uri) or "").resolve())
        lines = [r["line"] - 1 for r in edits]
        moved = lenses.follow_lines(before if before is not None else source, source, lines)
        return [(moved[r["line"] - 1], r) for r in edits if r["line"] - 1 in moved]

    def patched_lines(self, uri: str, source: str) -> dict[int, list[str]]:
        """0-based line in the editor's text -> the last patch's edited functions declared there.
        Declaration lines come from the debug info (`locations`), else (a function the debug
        info did not place) from its name in the saved file; both are then followed through
        the edits made since the patch (lines inserted above), or dropped."""
        assert self.last_patch is not None
        path = Path(to_fs_path(uri) or "").resolve()
        names = self.last_patch["functions"] + self.last_patch.get("added", [])
        located_anywhere = set()
        located: dict[int, list[str]] = {}
        for loc in self.last_patch.get("locations") or []:
            if loc["function"] not in names:
                continue
            located_anywhere.add(loc["function"])
            if Path(loc["file"]).resolve() == path:
                located.setdefault(loc["line"] - 1, []).append(loc["function"])
        before = self.patched_sources.get(path)
        missing = [n for n in names if n not in located_anywhere]
        if missing and (before is not None or not self.patched_sources):
            for line, functions in lenses.function_lines(before or source, missing).items():
                located.setdefault(line, []).extend(f for f in functions if f not in located.get(line, []))
        return lenses.relocate(before if before is not None else source, source, located)

    def live_frames_in(self, uri: str) -> list[dict]:
        """The last patch's live frames (HL1012) of functions declared in this file."""
        frames = ((self.last_patch or {}).get("live_frames") or {}).get("frames") or []
        return [f for f in frames if f.get("file") and self.is_file(uri, f["file"])]

    def code_lenses(self, uri: str) -> list[types.CodeLens]:
        if not self.in_crate(uri):
            return []
        source = self.workspace.get_text_document(uri).source
        out: list[types.CodeLens] = []

        def lens(line: int, title: str, command: str, tooltip: str) -> None:
            rng = types.Range(
                start=types.Position(line=line, character=0), end=types.Position(line=line, character=0)
            )
            out.append(
                types.CodeLens(
                    range=rng,
                    command=types.Command(title=title, command=command, tooltip=tooltip),
                    data={"tooltip": tooltip},  # vscode-languageclient drops Command.tooltip
                )
            )

        main_line = lenses.fn_line(source, "main")
        if main_line is not None:
            if self.running:
                lens(main_line, lenses.REBUILD, "hotline.restart", lenses.REBUILD_TOOLTIP)
            else:
                lens(main_line, lenses.RUN, "hotline.run", lenses.RUN_TOOLTIP)
        if self.last_patch is not None:
            for line, functions in sorted(self.patched_lines(uri, source).items()):
                receipts = [self.receipts.get(f, ("", ""))[0] for f in functions]
                title = lenses.patched_title(self.last_patch["ms"], receipts)
                not_run = [m for f in functions if (m := self.receipts.get(f, ("", ""))[1])]
                if not_run:
                    tooltip = lenses.NOT_RUN_TOOLTIP.format(message=not_run[0])
                    lens(line, title, "hotline.restart", tooltip)
                else:
                    lens(line, title, "hotline.showLastPatch", lenses.PATCHED_TOOLTIP)
            for line, frame in lenses.live_frame_lines(source, self.live_frames_in(uri)):
                tooltip = lenses.LIVE_FRAME_TOOLTIP.format(**frame)
                lens(line, lenses.live_frame_title(frame), "hotline.restart", tooltip)
        if self.last_refused is not None:
            e = self.last_refused
            here = [
                r
                for r in e.get("rude_edits", [])
                if r.get("file") and r.get("line") and self.is_file(uri, r["file"])
            ]
            for line, r in self.refused_lines(uri, source, here):
                tooltip = lenses.RESTART_REQUIRED_TOOLTIP.format(message=r["message"])
                lens(line, lenses.restart_required_title(r["rule"]), "hotline.restart", tooltip)
            if here:
                return out
            line = None
            if e.get("symbol"):
                from hotline.engine.analyse.demangle import demangle

                name = lenses.last_segment(demangle(e["symbol"]))
                line = lenses.fn_line(source, name) if name else None
            if line is None and uri == self.last_saved_uri:
                line = 0
            if line is not None:
                lens(
                    line,
                    lenses.refused_title(e["rule"], e["reason"]),
                    "hotline.showLastPatch",
                    lenses.REFUSED_TOOLTIP.format(reason=e["reason"]),
                )
        return out

    def shutdown_app(self) -> None:
        """The server is going away: the app is left running for the next server to
        re-attach to (a window reload, `:LspRestart`); if none does within
        REATTACH_GRACE_S (the editor was closed), a reaper process stops it."""
        session = self.session
        if session is not None:
            self.app_pid = None
            try:
                session.detach(reap_after_s=REATTACH_GRACE_S)
            except Exception:
                log.exception("leaving the app")


server = HotlineLanguageServer()


@server.feature(types.INITIALIZE)
def on_initialize(ls: HotlineLanguageServer, params: types.InitializeParams) -> None:
    ls.loop = asyncio.get_running_loop()
    ls._init_options = params.initialization_options  # type: ignore[attr-defined]


@server.feature(types.INITIALIZED)
def on_initialized(ls: HotlineLanguageServer, params: types.InitializedParams) -> None:
    root = ls.workspace.root_path
    folders = list(ls.workspace.folders.values())
    if not root and folders:
        root = to_fs_path(folders[0].uri)
    ls.root = root
    ls.window_log_message(types.LogMessageParams(type=types.MessageType.Info, message=environment()))
    problems = ls.configure(getattr(ls, "_init_options", None), root)
    for problem in problems:
        ls.window_show_message(types.ShowMessageParams(type=types.MessageType.Error, message=problem))
    ls.status("error" if problems else "idle", message=problems[0] if problems else None)
    if not problems and ls.crate_dir is not None:
        asyncio.ensure_future(ls.reattach_if_left_running())


@server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
def on_did_change_configuration(
    ls: HotlineLanguageServer, params: types.DidChangeConfigurationParams
) -> None:
    """New settings: checked now; those that shape the build take effect at the next run or restart,
    rustcWarnings at once."""
    before = dict(ls.settings)
    problems = ls.configure(params.settings, ls.root)
    if problems:
        for problem in problems:
            ls.window_show_message(types.ShowMessageParams(type=types.MessageType.Error, message=problem))
        ls.status("error", message=problems[0])
        return
    if ls.rustc_warnings != before.get("rustcWarnings", False) and ls.crate_dir is not None:
        ls.publish(*ls.diagnostics)
    if ls.session is None:
        return
    ls.session.allow_layout_changes = frozenset(ls.settings.get("allowLayoutChanges") or [])
    changed = {k for k in before.keys() | ls.settings.keys() if before.get(k) != ls.settings.get(k)}
    if changed <= LIVE_SETTINGS:
        return
    ls.settings_changed = True
    if ls.running:
        ls.window_show_message(
            types.ShowMessageParams(
                type=types.MessageType.Info,
                message="Hotline: the new settings take effect when the app is restarted",
            )
        )


@server.feature(types.SHUTDOWN)
async def on_shutdown(ls: HotlineLanguageServer, params: None) -> None:
    await asyncio.to_thread(ls.shutdown_app)


@server.feature(types.TEXT_DOCUMENT_DID_SAVE)
def on_did_save(ls: HotlineLanguageServer, params: types.DidSaveTextDocumentParams) -> None:
    uri = params.text_document.uri
    ls.speculation.cancel()
    path = Path(to_fs_path(uri) or "")
    if path.name in RESTART_FILES and (ls.running or ls.relaunch_on_save) and ls.session is not None:
        root = ls.session.workspace_root.resolve()
        if path.resolve().is_relative_to(root) and "target" not in path.resolve().relative_to(root).parts:
            ls.status("building", message=f"{path.name} changed: full rebuild and relaunch")
            asyncio.ensure_future(ls.run_app(restart=True))
        return
    if not ls.in_crate(uri):
        return
    ls.last_saved_uri = uri
    if ls.relaunch_on_save:  # the app exited or crashed: rebuild it with this save, as `hotline run` does
        ls.status("building", message=RELAUNCH_MESSAGE)
        asyncio.ensure_future(ls.run_app(restart=True))
    elif ls.patch_on_save and ls.running:
        ls.saved_paths.add(Path(to_fs_path(uri) or ""))
        ls.request_patch()
    elif ls.patch_on_save and ls.state == "building":
        ls.saved_paths.add(Path(to_fs_path(uri) or ""))
        ls.patch_after_build = True  # the build may have read the file before this save


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def on_did_change(ls: HotlineLanguageServer, params: types.DidChangeTextDocumentParams) -> None:
    ls.speculation.changed(params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_CODE_LENS)
def on_code_lens(ls: HotlineLanguageServer, params: types.CodeLensParams) -> list[types.CodeLens]:
    return ls.code_lenses(params.text_document.uri)


@server.command("hotline.run")
async def cmd_run(ls: HotlineLanguageServer, *args: Any) -> dict:
    if ls.running:
        return {"ok": True, "pid": ls.app_pid, "message": "already running"}
    return await ls.run_app()


@server.command("hotline.restart")
async def cmd_restart(ls: HotlineLanguageServer, *args: Any) -> dict:
    return await ls.run_app(restart=True)


@server.command("hotline.stop")
async def cmd_stop(ls: HotlineLanguageServer, *args: Any) -> dict:
    return await ls.stop_app()


@server.command("hotline.rebuild")
async def cmd_rebuild(ls: HotlineLanguageServer, *args: Any) -> dict:
    """Forces a full rebuild from clean workspace artifacts, then (re)launches the app."""
    return await ls.run_app(restart=True, clean=True)


@server.command("hotline.showLastPatch")
def cmd_show_last_patch(ls: HotlineLanguageServer, *args: Any) -> str:
    return ls.last_patch_markdown()


def _hand_over_on_signal(_signum: int, _frame: object) -> None:
    if server.loop is not None:
        server.loop.call_soon_threadsafe(server.hand_over)


def _stop_at_exit() -> None:
    server.shutdown_app()


def main() -> None:
    logs.configure(log)
    atexit.register(_stop_at_exit)
    signal.signal(signal.SIGUSR1, _hand_over_on_signal)
    server.start_io()


if __name__ == "__main__":
    main()
