"""The language server's own log: one line per problem on stderr (what editors show in
their output panel), the full Python traceback only in a file, as the engine does."""

from __future__ import annotations

import logging
from pathlib import Path

from hotline.engine.app.preload import cache_root


class OneLine(logging.Formatter):
    """`hotline-lsp <logger> <LEVEL> <message>`; an exception adds its type and message and
    where the traceback is, never the traceback itself."""

    def __init__(self, details: Path) -> None:
        super().__init__("hotline-lsp %(name)s %(levelname)s %(message)s")
        self.details = details

    def format(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(_with_message(record))
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            line += f": {type(error).__name__}: {error} (details: {self.details})"
        return line


def _with_message(record: logging.LogRecord) -> logging.LogRecord:
    record.message = record.getMessage()
    return record


def configure(logger: logging.Logger, file: Path | None = None) -> Path:
    """Sends warnings and up to stderr as single lines, and everything with tracebacks to
    `file` (default `<cache>/lsp.log`); returns that file."""
    file = file or cache_root() / "lsp.log"
    file.parent.mkdir(parents=True, exist_ok=True)
    to_file = logging.FileHandler(file)
    to_file.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    to_stderr = logging.StreamHandler()
    to_stderr.setFormatter(OneLine(file))
    root = logging.getLogger()
    root.setLevel(logging.WARNING)
    root.handlers[:] = [to_stderr, to_file]
    logger.setLevel(logging.INFO)
    return file
