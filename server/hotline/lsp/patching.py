"""Save -> patch: each save of the app's sources asks for a patch (or a relaunch, or a full
rebuild for Cargo.toml and build.rs); saves during a patch coalesce into one more."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from pygls.uris import to_fs_path

from hotline.engine.errors import HotlineError
from hotline.engine.session import RESTART_FILES
from hotline.lsp import lifecycle

if TYPE_CHECKING:
    from hotline.lsp.core import HotlineLanguageServer

log = logging.getLogger("hotline.lsp")

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
        request_patch(ls)
    elif ls.patch_on_save and ls.state == "building":
        ls.saved_paths.add(Path(to_fs_path(uri) or ""))
        ls.patch_after_build = True  # the build may have read the file before this save


def request_patch(ls: HotlineLanguageServer) -> None:
    """Patches now, or once more after the patch in flight (saves meanwhile coalesce)."""
    if ls.patching:
        ls.patch_pending = True
        return
    ls.patching = True
    ls.patch_task = asyncio.ensure_future(_patch_loop(ls))


async def _patch_loop(ls: HotlineLanguageServer) -> None:
    try:
        while True:
            ls.patch_pending = False
            async with ls.engine_lock:
                if ls.session is None or not ls.running:
                    return
                saved, ls.saved_paths = sorted(ls.saved_paths), set()
                try:
                    await asyncio.to_thread(ls.session.patch, saved)
                except HotlineError as e:
                    ls.work_progress.end(ls.patch_token, "failed")
                    ls.patch_token = None
                    ls.error(str(e))
                except Exception as e:
                    log.exception("patching")
                    ls.work_progress.end(ls.patch_token, "failed")
                    ls.patch_token = None
                    ls.error(f"Hotline patch failed: {e}")
            if not ls.patch_pending:
                return
    finally:
        ls.patching = False


def last_patch_markdown(ls: HotlineLanguageServer) -> str:
    """hotline.showLastPatch: the last patch (its functions, phases and machine-code diff) or refusal."""
    if ls.last_refused is not None:
        e = ls.last_refused
        text = f"### Patch refused ({e['rule']})\n\n{e['reason']}\n"
        if e.get("symbol"):
            text += f"\nSymbol: `{e['symbol']}`\n"
        return text
    e = ls.last_patch
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
    for name, diff in ls.session.last_patch_disassembly() if ls.session else []:
        lines += ["", f"#### `{name}`", "", "```diff", diff, "```"]
    return "\n".join(lines) + "\n"
