"""textDocument/didSave: a save of the app's sources asks for a patch, or relaunches an app
that exited, or rebuilds and relaunches for Cargo.toml and build.rs (HL1006)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from pygls.uris import to_fs_path

from hotline.engine.session import RESTART_FILES
from hotline.lsp import lifecycle, patching

if TYPE_CHECKING:
    from hotline.lsp.core import HotlineLanguageServer

RELAUNCH_MESSAGE = "the app is not running: full rebuild and relaunch"


def saved(ls: HotlineLanguageServer, uri: str) -> None:
    """textDocument/didSave."""
    ls.speculation.cancel()
    path = Path(to_fs_path(uri) or "")
    if path.name in RESTART_FILES and (ls.running or ls.relaunch_on_save) and ls.session is not None:
        root = ls.session.workspace_root.resolve()
        if path.resolve().is_relative_to(root) and "target" not in path.resolve().relative_to(root).parts:
            ls.status("building", message=f"{path.name} changed: full rebuild and relaunch")
            asyncio.ensure_future(lifecycle.run_app(ls, restart=True))
        return
    if not ls.in_crate(uri):
        return
    ls.last_saved_uri = uri
    if ls.relaunch_on_save:  # the app exited or crashed: rebuild it with this save, as `hotline run` does
        ls.status("building", message=RELAUNCH_MESSAGE)
        asyncio.ensure_future(lifecycle.run_app(ls, restart=True))
    elif ls.patch_on_save and ls.running:
        ls.saved_paths.add(Path(to_fs_path(uri) or ""))
        patching.request_patch(ls)
    elif ls.patch_on_save and ls.state == "building":
        ls.saved_paths.add(Path(to_fs_path(uri) or ""))
        ls.patch_after_build = True  # the build may have read the file before this save
