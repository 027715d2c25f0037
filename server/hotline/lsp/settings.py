"""The editor's settings (schemas/settings.schema.json): read at initialize and on
workspace/didChangeConfiguration; those that shape the build wait for the next run or restart."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from hotline.engine import schemas
from hotline.lsp.diagnostics import publish

if TYPE_CHECKING:
    from hotline.lsp.core import HotlineLanguageServer

LIVE_SETTINGS = {  # they apply at once
    "rustcWarnings",
    "patchOnSave",
    "allowLayoutChanges",
    "speculativeBuilds",
    "speculativeDelayMs",
    "speculativeDiagnostics",
}


def configure(ls: HotlineLanguageServer, options: Any, root: str | None) -> list[str]:
    """Reads initializationOptions; returns problems to show the user (empty when all is well)."""
    if isinstance(options, dict) and isinstance(options.get("hotline"), dict):
        options = options["hotline"]
    options = options or {}
    problems = schemas.problems("settings", options)
    if problems:
        return ["Hotline: invalid settings: " + "; ".join(problems)]
    ls.settings = dict(options)
    base = Path(root) if root else Path.cwd()
    crate = Path(options["crate"]) if options.get("crate") else base
    if not crate.is_absolute():
        crate = base / crate
    if not (crate / "Cargo.toml").is_file():
        return [f'Hotline: no Cargo.toml in {crate}: set the "crate" setting to the crate of your app']
    ls.crate_dir = crate.resolve()
    for key, value in (options.get("env") or {}).items():
        os.environ[key] = value
    return []


def changed(ls: HotlineLanguageServer, options: Any) -> None:
    """New settings: checked now; those that shape the build take effect at the next run or restart,
    rustcWarnings at once."""
    before = dict(ls.settings)
    problems = configure(ls, options, ls.root)
    if problems:
        for problem in problems:
            ls.window_show_message(types.ShowMessageParams(type=types.MessageType.Error, message=problem))
        ls.status("error", message=problems[0])
        return
    if ls.rustc_warnings != before.get("rustcWarnings", False) and ls.crate_dir is not None:
        publish(ls, *ls.diagnostics)
    if ls.session is None:
        return
    ls.session.allow_layout_changes = frozenset(ls.settings.get("allowLayoutChanges") or [])
    keys = {k for k in before.keys() | ls.settings.keys() if before.get(k) != ls.settings.get(k)}
    if keys <= LIVE_SETTINGS:
        return
    ls.settings_changed = True
    if ls.running:
        ls.window_show_message(
            types.ShowMessageParams(
                type=types.MessageType.Info,
                message="Hotline: the new settings take effect when the app is restarted",
            )
        )
