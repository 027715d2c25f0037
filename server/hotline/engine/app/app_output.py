"""The app's stdout and stderr, through files the engine follows rather than pipes.

An app writing to a pipe dies (EPIPE: `println!` panics) on its next line once the
engine holding the pipe's other end is gone, so an app an editor's language server
launched could not outlive a window reload. Writing to files, it can: a new engine
re-attaches (`handover.py`) and follows the same files from where they end.

Linux: a file's appends are noticed through inotify (libc, by ctypes), so a line reaches
its event as soon as it is written; elsewhere the files would be polled.
"""

from __future__ import annotations

import ctypes
import os
import select
import threading
from collections.abc import Callable
from pathlib import Path

_IN_MODIFY = 0x2
_IN_CLOEXEC = os.O_CLOEXEC
_POLL_S = 0.5  # how often a quiet follower checks whether it should stop


class _Inotify:
    """One inotify descriptor watching files for appends; None-safe if inotify is missing."""

    def __init__(self, paths: list[Path]) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self.fd = libc.inotify_init1(_IN_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        for path in paths:
            if libc.inotify_add_watch(self.fd, os.fsencode(path), _IN_MODIFY) < 0:
                os.close(self.fd)
                raise OSError(ctypes.get_errno(), f"inotify_add_watch {path}")

    def wait(self, timeout: float) -> None:
        readable, _, _ = select.select([self.fd], [], [], timeout)
        if readable:
            os.read(self.fd, 65536)  # the events themselves say nothing the files don't

    def close(self) -> None:
        os.close(self.fd)


class OutputFiles:
    """Where one launch's app writes: `<dir>/<build id>.stdout` and `.stderr`."""

    def __init__(self, folder: Path, build_id: str) -> None:
        self.paths = {name: folder / f"{build_id}.{name}" for name in ("stdout", "stderr")}

    @classmethod
    def at(cls, paths: dict[str, str]) -> OutputFiles:
        """The files an earlier engine's launch made (`AppRecord.output`)."""
        files = cls.__new__(cls)
        files.paths = {name: Path(path) for name, path in paths.items()}
        return files

    def create(self) -> dict[str, int]:
        """Fresh files (the previous launches' are deleted); returns their fds for the app."""
        folder = next(iter(self.paths.values())).parent
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.iterdir():
            old.unlink(missing_ok=True)
        return {
            name: os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
            for name, path in self.paths.items()
        }


class Follower:
    """A thread that turns the lines appended to the files into `on_line(stream, line)` calls,
    until `stop()`, or until `alive()` is false and the files are read to their end."""

    def __init__(
        self,
        files: OutputFiles,
        on_line: Callable[[str, str], None],
        alive: Callable[[], bool],
        from_end: bool = False,
    ) -> None:
        """`from_end`: re-attached, what the app printed before is not replayed (an editor's
        terminal would show it as if new)."""
        self._files, self._on_line, self._alive = files, on_line, alive
        self._stop = threading.Event()
        self._readers = {name: open(path, "rb") for name, path in files.paths.items()}  # noqa: SIM115
        if from_end:
            for reader in self._readers.values():
                reader.seek(0, os.SEEK_END)
        self._partial = {name: b"" for name in self._readers}
        self._thread = threading.Thread(target=self._run, name="hotline-app-output", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.join()

    def join(self) -> None:
        """Waits until it has passed on what the app wrote before it exited (or `stop`)."""
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _drain(self) -> None:
        for name, reader in self._readers.items():
            chunk = reader.read()
            if not chunk:
                continue
            *lines, self._partial[name] = (self._partial[name] + chunk).split(b"\n")
            for line in lines:
                self._on_line(name, line.decode(errors="replace"))

    def _run(self) -> None:
        try:
            notify: _Inotify | None = _Inotify(list(self._files.paths.values()))
        except OSError:
            notify = None
        try:
            while not self._stop.is_set():
                self._drain()
                if not self._alive():
                    self._drain()  # what it wrote as it exited
                    break
                if notify is not None:
                    notify.wait(_POLL_S)
                else:
                    self._stop.wait(0.02)
            if not self._stop.is_set():  # the app ended: its last words, even without a newline
                for name, rest in self._partial.items():
                    if rest:
                        self._on_line(name, rest.decode(errors="replace"))
        finally:
            if notify is not None:
                notify.close()
            for reader in self._readers.values():
                reader.close()
