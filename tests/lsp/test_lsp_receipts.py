"""Receipts in the editor (issue 25): the language server, driven by a real LSP client
(pytest-lsp, as in test_lsp.py), adds the receipt to each patched function's lens
(`patched in 62ms · ran`, `· not called since the patch`) and says a function not run
3 s after its patch (HL1013) in the status, quietly: no message pops up."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

from hotline import REPO_ROOT, examples
from lsprotocol import types
from pytest_lsp import LanguageClient
from test_lsp import lenses, line_of, open_and_run, request, save, until


async def lens_matching(client: LanguageClient, path: Path, line: int, pattern: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    found: dict[int, list[str]] = {}
    while time.monotonic() < deadline:
        found = await lenses(client, path)
        for title in found.get(line, []):
            if re.fullmatch(pattern, title):
                return title
        await asyncio.sleep(0.1)
    raise AssertionError(f"no lens {pattern!r} on line {line} in {timeout}s: {found}")


async def test_a_patched_lens_says_ran_or_not_called_since_the_patch_and_the_status_says_it_quietly(
    client: LanguageClient, tmp_path: Path, monkeypatch
):
    monkeypatch.setitem(examples.APPS, "receipts", REPO_ROOT / "tests" / "apps" / "receipts")
    crate = examples.copy_app("receipts", tmp_path)
    await open_and_run(client, crate)
    await until(lambda: any(line.startswith("tick ") for _, line in client.output), 60, "app output")
    main_rs = crate / "src" / "main.rs"
    text = main_rs.read_text().replace("    n + 1\n", "    n + 100\n").replace("    7\n", "    8\n")
    await save(client, main_rs, text, 1)
    step, settings = line_of(text, "fn step("), line_of(text, "fn settings(")
    await lens_matching(client, main_rs, step, r"patched in \d+ms · ran", 60)
    await lens_matching(client, main_rs, settings, r"patched in \d+ms · not called since the patch", 10)
    # A click on the not-run lens restarts the app (what applies the edit); on the other, the patch.
    raw = await request(
        client.text_document_code_lens_async(
            types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=main_rs.as_uri()))
        ),
        10,
    )
    commands = {
        lens.range.start.line: lens.command for lens in raw if lens.command.title.startswith("patched")
    }
    assert commands[step].command == "hotline.showLastPatch"
    assert commands[settings].command == "hotline.restart"
    assert commands[settings].tooltip.startswith(
        "receipts::settings has not been called since the patch (3 s)"
    )
    assert commands[settings].tooltip.endswith(
        "restart to apply. Click to restart the app and run the new code"
    )
    patched = [s for s in client.statuses if s.get("state") == "patched"]
    assert patched[-1]["message"] == (
        "receipts::settings not called since the patch (HL1013): restart to apply"
    ), patched[-1]
    assert not client.messages  # quiet: lens and status, no popup
