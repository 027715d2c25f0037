"""Work done progress (window/workDoneProgress) of the builds and patches the server reports."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING, Any

from lsprotocol import types

if TYPE_CHECKING:
    from hotline.lsp.core import HotlineLanguageServer

log = logging.getLogger("hotline.lsp")


class Progress:
    """Tokens the server created; none at all when the client does not support progress."""

    def __init__(self, ls: HotlineLanguageServer) -> None:
        self.ls = ls
        self._token_seq = 0
        self._created: dict[str, asyncio.Future] = {}  # token -> the client's answer to create

    def begin(
        self, kind: str, title: str, message: str | None = None, percentage: int | None = None
    ) -> str | None:
        ls = self.ls
        if not ls.supports("window.work_done_progress"):
            return None
        self._token_seq += 1
        token = f"hotline-{kind}-{os.getpid()}-{self._token_seq}"
        # The client must have answered window/workDoneProgress/create before the token is
        # used: begin, reports and end wait for its answer, in order (none if it failed).
        self._created[token] = asyncio.ensure_future(ls.work_done_progress.create_async(token))
        begin = types.WorkDoneProgressBegin(title=title, message=message, percentage=percentage)
        self._send(token, lambda: ls.work_done_progress.begin(token, begin))
        return token

    def _send(self, token: str, send: Any, last: bool = False) -> None:
        created = self._created.get(token)
        if created is None:
            return
        if last:
            del self._created[token]

        def sent(future: asyncio.Future) -> None:  # done callbacks run in the order they were added
            if not future.cancelled() and future.exception() is None:
                send()
            elif last and not future.cancelled():
                log.info("progress %s not created: %s", token, future.exception())

        created.add_done_callback(sent)

    def report(self, token: str | None, message: str, percentage: int) -> None:
        if token is not None:
            report = types.WorkDoneProgressReport(message=message, percentage=percentage)
            self._send(token, lambda: self.ls.work_done_progress.report(token, report))

    def end(self, token: str | None, message: str | None = None) -> None:
        if token is not None:
            end = types.WorkDoneProgressEnd(message=message)
            self._send(token, lambda: self.ls.work_done_progress.end(token, end), last=True)
