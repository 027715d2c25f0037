"""The Hotline language server (pygls 2): run the app, patch it on save, report back.

This module creates the server and registers what it serves; each feature is in a module
of its own: settings.py, lifecycle.py, saves.py (didSave), patching.py (save -> patch), code_lens.py,
events.py (engine events -> notifications), progress.py, diagnostics.py, speculation.py.
The shared state is core.HotlineLanguageServer.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import signal
from typing import Any

from lsprotocol import types

from hotline.lsp import code_lens, lifecycle, logs, patching, saves, settings
from hotline.lsp.core import HotlineLanguageServer

log = logging.getLogger("hotline.lsp")

server = HotlineLanguageServer()


@server.feature(types.INITIALIZE)
def on_initialize(ls: HotlineLanguageServer, params: types.InitializeParams) -> None:
    lifecycle.initialize(ls, params.initialization_options)


@server.feature(types.INITIALIZED)
def on_initialized(ls: HotlineLanguageServer, params: types.InitializedParams) -> None:
    lifecycle.initialized(ls)


@server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
def on_did_change_configuration(
    ls: HotlineLanguageServer, params: types.DidChangeConfigurationParams
) -> None:
    settings.changed(ls, params.settings)


@server.feature(types.SHUTDOWN)
async def on_shutdown(ls: HotlineLanguageServer, params: None) -> None:
    await asyncio.to_thread(lifecycle.shutdown_app, ls)


@server.feature(types.TEXT_DOCUMENT_DID_SAVE)
def on_did_save(ls: HotlineLanguageServer, params: types.DidSaveTextDocumentParams) -> None:
    saves.saved(ls, params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def on_did_change(ls: HotlineLanguageServer, params: types.DidChangeTextDocumentParams) -> None:
    ls.speculation.changed(params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_CODE_LENS)
def on_code_lens(ls: HotlineLanguageServer, params: types.CodeLensParams) -> list[types.CodeLens]:
    return code_lens.code_lenses(ls, params.text_document.uri)


@server.command("hotline.run")
async def cmd_run(ls: HotlineLanguageServer, *args: Any) -> dict:
    if ls.running:
        return {"ok": True, "pid": ls.app_pid, "message": "already running"}
    return await lifecycle.run_app(ls)


@server.command("hotline.restart")
async def cmd_restart(ls: HotlineLanguageServer, *args: Any) -> dict:
    return await lifecycle.run_app(ls, restart=True)


@server.command("hotline.stop")
async def cmd_stop(ls: HotlineLanguageServer, *args: Any) -> dict:
    return await lifecycle.stop_app(ls)


@server.command("hotline.rebuild")
async def cmd_rebuild(ls: HotlineLanguageServer, *args: Any) -> dict:
    """Forces a full rebuild from clean workspace artifacts, then (re)launches the app."""
    return await lifecycle.run_app(ls, restart=True, clean=True)


@server.command("hotline.showLastPatch")
def cmd_show_last_patch(ls: HotlineLanguageServer, *args: Any) -> str:
    return patching.last_patch_markdown(ls)


def _hand_over_on_signal(_signum: int, _frame: object) -> None:
    if server.loop is not None:
        server.loop.call_soon_threadsafe(lifecycle.hand_over, server)


def _stop_at_exit() -> None:
    lifecycle.shutdown_app(server)


def main() -> None:
    logs.configure(log)
    atexit.register(_stop_at_exit)
    signal.signal(signal.SIGUSR1, _hand_over_on_signal)
    server.start_io()


if __name__ == "__main__":
    main()
