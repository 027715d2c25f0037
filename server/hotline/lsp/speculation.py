"""Speculative builds from the language server: once the crate's Rust buffers have been left
unchanged for `speculativeDelayMs`, the crates a save of them would rebuild are compiled
from their unsaved texts in the background (`Session.speculate`), so a save of those texts
is patched without waiting for rustc. Saves go on exactly as before: the engine decides
whether a build matches them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any, Protocol

from pygls.uris import to_fs_path
from pygls.workspace import Workspace

from hotline.engine.session import Session

log = logging.getLogger("hotline.lsp")
# Unset speculativeDelayMs: the quiet period is the last speculative build's time,
# within these bounds (the longest until a build is known). A build that the next keystroke
# throws away costs about what it took, so a quick one is worth starting sooner, while a
# slow one waits for a real pause.
MIN_DELAY_MS, MAX_DELAY_MS = 100, 300


class _Server(Protocol):
    settings: dict[str, Any]
    session: Session | None

    @property
    def workspace(self) -> Workspace: ...

    @property
    def running(self) -> bool: ...

    def in_crate(self, uri: str) -> bool: ...


class Speculation:
    """The quiet-period timer; the builds themselves run in the engine, one at a time."""

    def __init__(self, server: _Server) -> None:
        self.server = server
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Future | None = None  # asyncio keeps only weak references to tasks

    @property
    def enabled(self) -> bool:
        return bool(self.server.settings.get("speculativeBuilds", True))

    @property
    def delay_s(self) -> float:
        chosen = self.server.settings.get("speculativeDelayMs")
        if chosen is not None:
            return chosen / 1000
        session = self.server.session
        last = session.speculative.last_build_ms if session is not None else None
        return min(MAX_DELAY_MS, max(MIN_DELAY_MS, last if last is not None else MAX_DELAY_MS)) / 1000

    def changed(self, uri: str) -> None:
        """A buffer changed (didChange): the build in flight is stale, and the quiet period
        starts again, if it is the crate's."""
        if self.enabled and self.server.running and self.server.in_crate(uri):
            if self.server.session is not None:
                self.server.session.buffers_changed()
            self._arm()

    def cancel(self) -> None:
        """No build for the texts so far: a save (didSave) patches by itself, and a build
        started after it could only be of what it saved. Other buffers left unsaved get one
        at their next change."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self) -> None:
        self.cancel()
        self._timer = asyncio.get_running_loop().call_later(self.delay_s, self._quiet)

    def _quiet(self) -> None:
        """On the loop: the crate's open buffers, compared with disk and built on a thread."""
        self._timer = None
        session = self.server.session
        if session is None or not self.server.running or not self.enabled:
            return
        texts = {
            Path(to_fs_path(uri) or ""): doc.source
            for uri, doc in self.server.workspace.text_documents.items()
            if self.server.in_crate(uri)
        }
        self._task = asyncio.ensure_future(asyncio.to_thread(_speculate, session, texts))


def _speculate(session: Session, texts: dict[Path, str]) -> None:
    """Buffers equal to their file are left out; with none left, the build in flight (of
    text since undone) is stopped."""
    overlays = {}
    for path, text in texts.items():
        with contextlib.suppress(OSError):
            if path.read_bytes() != text.encode():
                overlays[path] = text
    try:
        session.speculate(overlays)
    except Exception:  # a background nicety: never an error the user sees
        log.exception("speculative build")
