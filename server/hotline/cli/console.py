"""Hotline's own lines in the terminal: the `[hotline]` prefix, colours, errors in one line."""

from __future__ import annotations

import os
import re
import threading
import time
import traceback
from typing import TextIO

from hotline.engine.app.preload import cache_root

#: SGR codes of the styles `Console.paint` knows.
_STYLES = {"prefix": "36", "ok": "32", "error": "31", "warn": "33", "dim": "2"}
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Console:
    """Hotline's own lines on stderr, whole (several threads print) and coloured only for a
    terminal that wants colour (https://no-color.org), so they stand out from the app's."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.color = self.tty and not os.environ.get("NO_COLOR")
        self.log_file = cache_root() / "cli.log"  # the session's log, once there is a session
        self._lock = threading.RLock()

    def paint(self, text: str, style: str | None) -> str:
        return f"\x1b[{_STYLES[style]}m{text}\x1b[0m" if self.color and style else text

    def write(self, text: str, end: str = "\n") -> None:
        """Writes text as is, less its colours (rustc's rendered errors have some) when plain."""
        with self._lock:
            self.stream.write((text if self.color else _ANSI.sub("", text)) + end)
            self.stream.flush()

    def line(self, text: str, style: str | None = None) -> str:
        return f"{self.paint('[hotline]', 'prefix')} {self.paint(text, style)}"

    def say(self, text: str, style: str | None = None) -> None:
        self.write(self.line(text, style))

    def error(self, text: str) -> None:
        """`hotline: <first line>` in red; later lines (rustc's errors, say) as they are."""
        first, _, rest = text.partition("\n")
        self.write(self.paint(f"hotline: {first}", "error") + (f"\n{rest.rstrip()}" if rest.strip() else ""))

    def internal_error(self, exc: BaseException) -> None:
        """One line for a bug in hotline itself; its traceback goes to a log file, not the terminal."""
        log = self.log_file
        try:
            log.parent.mkdir(parents=True, exist_ok=True)
            with log.open("a") as f:
                f.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} hotline run\n")
                f.write("".join(traceback.format_exception(exc)))
            where = f" (details: {log})"
        except OSError:
            where = ""
        self.error(f"internal error: {type(exc).__name__}: {exc}{where}")
