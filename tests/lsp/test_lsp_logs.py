"""Issue 14: no front end shows a Python traceback. The language server's stderr (the
editor's output panel) gets one line per problem; the traceback goes to its log file."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from hotline.lsp import logs


def test_an_exception_logged_by_the_server_is_one_line_on_stderr_and_a_traceback_in_its_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        file = logs.configure(logging.getLogger("hotline.lsp"), tmp_path / "lsp.log")
        try:
            raise ValueError("a bug in the server")
        except ValueError:
            logging.getLogger("hotline.lsp").exception("handling engine event %s", "patched")
        for handler in root.handlers:
            handler.flush()
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    err = capsys.readouterr().err
    assert err == (
        "hotline-lsp hotline.lsp ERROR handling engine event patched: ValueError: a bug in the server "
        f"(details: {file})\n"
    )
    text = file.read_text()
    assert "Traceback (most recent call last)" in text and "ValueError: a bug in the server" in text
