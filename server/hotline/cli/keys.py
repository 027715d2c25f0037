"""The keys of `hotline run` in a terminal (r restart, p last patch, q quit, h help)."""

from __future__ import annotations

import contextlib
import os
import select
import termios
import threading
import tty
from collections.abc import Callable
from typing import TextIO

#: The key hint printed once the app runs, when stdin is a terminal.
KEY_HINT = "r restart · p last patch · q quit"
KEYS = {
    "r": "restart: full rebuild and relaunch (what `restart required` asks for)",
    "p": "show the last patch: its functions, phases and machine-code diff",
    "q": "quit: stop the app and exit",
    "h": "list these keys",
}


class Keys:
    """Single keys typed in the terminal (cbreak mode: no Enter, no echo), read on a thread.

    While the app itself has the terminal in raw mode (a TUI: ISIG off) its keys are left to
    it. The terminal's mode is restored on exit, however the run ends."""

    def __init__(self, fd: int, on_key: Callable[[str], None]) -> None:
        self.fd = fd
        self.on_key = on_key
        self._saved = termios.tcgetattr(fd)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="hotline-keys", daemon=True)

    @staticmethod
    def available(stream: TextIO) -> bool:
        """stdin is a terminal this process may set the mode of (not a background job)."""
        try:
            return stream.isatty() and os.tcgetpgrp(stream.fileno()) == os.getpgrp()
        except (AttributeError, OSError, ValueError):  # no stdin at all, or a closed one
            return False

    def start(self) -> None:
        tty.setcbreak(self.fd, termios.TCSANOW)
        self._thread.start()

    def restore(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=1)
        with contextlib.suppress(termios.error):  # a terminal that went away has no mode to restore
            termios.tcsetattr(self.fd, termios.TCSANOW, self._saved)

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                if not termios.tcgetattr(self.fd)[3] & termios.ISIG:  # the app's raw mode: its keys
                    self._stop.wait(0.1)
                    continue
                if not select.select([self.fd], [], [], 0.1)[0]:
                    continue
                data = os.read(self.fd, 64)
            except (OSError, termios.error):  # the terminal went away
                return
            if not data:
                return
            if data.startswith(b"\x1b"):
                continue  # an arrow or function key, not a command
            for key in data.decode(errors="ignore"):
                if key in KEYS:
                    self.on_key(key)
