"""The app's and the server's lifecycle: initialize, run, stop, take over from another engine,
re-attach to an app left running, and leave it running for the next server at shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import platform
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.uris import to_fs_path

from hotline.engine.app import handover
from hotline.engine.errors import EngineBusy, HotlineError, InternalError
from hotline.lsp import patching, settings
from hotline.lsp.core import DISTRIBUTION, INSTALLED, VERSION

if TYPE_CHECKING:
    from hotline.lsp.core import HotlineLanguageServer

log = logging.getLogger("hotline.lsp")

TAKE_OVER = "Take over"
TAKE_OVER_TIMEOUT_S = 15.0
REATTACH_GRACE_S = 10.0  # how long an app outlives its server, waiting for the next one


def environment() -> str:
    """Which Python and which `hotline` package this server runs: logged at start-up."""
    import hotline

    package = Path(hotline.__file__).resolve().parent
    dist = f"{DISTRIBUTION} {INSTALLED}" if INSTALLED else f"no {DISTRIBUTION} distribution installed"
    return (
        f"Hotline language server {VERSION}: Python {platform.python_version()} ({sys.executable}), "
        f"hotline package {package} ({dist})"
    )


def initialize(ls: HotlineLanguageServer, options: Any) -> None:
    ls.loop = asyncio.get_running_loop()
    ls._init_options = options  # type: ignore[attr-defined]


def initialized(ls: HotlineLanguageServer) -> None:
    root = ls.workspace.root_path
    folders = list(ls.workspace.folders.values())
    if not root and folders:
        root = to_fs_path(folders[0].uri)
    ls.root = root
    ls.window_log_message(types.LogMessageParams(type=types.MessageType.Info, message=environment()))
    problems = settings.configure(ls, getattr(ls, "_init_options", None), root)
    for problem in problems:
        ls.window_show_message(types.ShowMessageParams(type=types.MessageType.Error, message=problem))
    ls.status("error" if problems else "idle", message=problems[0] if problems else None)
    if not problems and ls.crate_dir is not None:
        asyncio.ensure_future(reattach_if_left_running(ls))


async def run_app(ls: HotlineLanguageServer, restart: bool = False, clean: bool = False) -> dict:
    ls.stopped_by_user = False
    async with ls.engine_lock:
        try:
            if ls.settings_changed and ls.session is not None:
                ls.app_pid = None  # the old app's exit is expected: no "stopped" status
                await asyncio.to_thread(ls.session.stop)
                ls.session = None
            ls.settings_changed = False
            session = ls.session or await asyncio.to_thread(ls.get_session)
            if not restart and ls.running:  # re-attached while this Run waited for the lock
                return {"ok": True, "pid": ls.app_pid, "message": "already running"}
            if restart or session.running is not None:  # running, or exited: its channel is closed
                ls.app_pid = None  # the old app's exit is expected: no "stopped" status
                pid = await asyncio.to_thread(session.restart, clean)
            else:
                pid = await asyncio.to_thread(session.start)
        except EngineBusy as e:
            return await _offer_take_over(ls, e)
        except InternalError as e:  # already shown: the engine-error event came first
            return {"ok": False, "message": str(e)}
        except HotlineError as e:
            ls.error(str(e))
            return {"ok": False, "message": str(e)}
        except Exception as e:  # channel errors and the like
            log.exception("starting the app")
            await asyncio.to_thread(_kill_orphan, ls)
            ls.error(f"Hotline could not start the app: {e}")
            return {"ok": False, "message": str(e)}
        if ls.patch_after_build:  # saves that came while the app was being built
            ls.patch_after_build = False
            patching.request_patch(ls)
        return {"ok": True, "pid": pid}


async def _offer_take_over(ls: HotlineLanguageServer, busy: EngineBusy) -> dict:
    """Another engine (a terminal's `hotline run`, another window) owns the app: offer to
    take it over. It is asked to let go (SIGUSR1) and this server re-attaches to the app,
    state intact. Called with the engine lock held."""
    ls.status("error", message=str(busy))
    choice = await ls.window_show_message_request_async(
        types.ShowMessageRequestParams(
            type=types.MessageType.Warning,
            message=f"Hotline: {busy}",
            actions=[types.MessageActionItem(title=TAKE_OVER)],
        )
    )
    if choice is None or choice.title != TAKE_OVER:
        return {"ok": False, "message": str(busy)}
    session = ls.get_session()
    with contextlib.suppress(ProcessLookupError):
        os.kill(busy.engine_pid, signal.SIGUSR1)
    deadline = time.monotonic() + TAKE_OVER_TIMEOUT_S
    while session.lock.acquire() is not None:
        if time.monotonic() > deadline:
            message = f"the other Hotline (pid {busy.engine_pid}) did not let go of the app"
            ls.error(f"Hotline: {message}")
            return {"ok": False, "message": message}
        await asyncio.sleep(0.1)
    try:
        pid = await asyncio.to_thread(session.start)
    except HotlineError as e:
        if not isinstance(e, InternalError):
            ls.error(str(e))
        return {"ok": False, "message": str(e)}
    return {"ok": True, "pid": pid}


async def reattach_if_left_running(ls: HotlineLanguageServer) -> None:
    """At start-up: an app an earlier server (before a window reload, `:LspRestart`, a
    crash) or another engine left running is re-attached to at once, state intact."""
    try:
        session = await asyncio.to_thread(ls.get_session)
    except HotlineError:
        return  # reported when the user runs the app
    if handover.left_running(session.app_record) is not None and not ls.running:
        await run_app(ls)


def hand_over(ls: HotlineLanguageServer) -> None:
    """Another engine asked for the app (SIGUSR1): let go of it, leaving it running."""
    session = ls.session
    if session is None:
        return
    ls.app_pid = None
    session.detach()
    ls.status("stopped", exitCode=None, message="another Hotline took the app over")
    ls.refresh_lenses()


def _kill_orphan(ls: HotlineLanguageServer) -> None:
    """The engine leaves the app running when it never connects to the patch channel: end it."""
    pid, ls.app_pid = ls.app_pid, None
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)


async def stop_app(ls: HotlineLanguageServer) -> dict:
    ls.stopped_by_user = True
    async with ls.engine_lock:
        if ls.session is None:
            return {"ok": True}
        was_running = ls.running
        ls.app_pid = None
        await asyncio.to_thread(ls.session.stop)
        if was_running:
            ls.status("stopped", exitCode=None, message="stopped")
            ls.refresh_lenses()
        return {"ok": True}


def shutdown_app(ls: HotlineLanguageServer) -> None:
    """The server is going away: the app is left running for the next server to
    re-attach to (a window reload, `:LspRestart`); if none does within
    REATTACH_GRACE_S (the editor was closed), a reaper process stops it."""
    session = ls.session
    if session is not None:
        ls.app_pid = None
        try:
            session.detach(reap_after_s=REATTACH_GRACE_S)
        except Exception:
            log.exception("leaving the app")
