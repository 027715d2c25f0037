"""Save -> patch: a patch per request, and saves during a patch coalesce into one more."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from hotline.engine.errors import HotlineError

if TYPE_CHECKING:
    from hotline.lsp.core import HotlineLanguageServer

log = logging.getLogger("hotline.lsp")


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
