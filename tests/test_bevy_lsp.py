"""The Bevy example in an editor (`hotline lsp`): what Bevy fixed at start-up is shown where
the user edited. A Startup system's edit is a warning on its `fn` line that says it ran at
start-up; a system whose parameters changed gets the refusal's lens on its own `fn` line
(not on `main`, whose code the compiler changed with it).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import pytest
import pytest_lsp
from hotline.examples import copy_app
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities
from test_real_world import CACHE

pytestmark = pytest.mark.slow

SERVER = ClientServerConfig(
    server_command=[sys.executable, "-m", "hotline.lsp"],
    server_env={**os.environ, "HOTLINE_TARGET_DIR": str(CACHE / "bevy")},
)


@pytest_lsp.fixture(config=SERVER)
async def editor(lsp_client: LanguageClient):
    lsp_client.output = []  # type: ignore[attr-defined]
    lsp_client.statuses = []  # type: ignore[attr-defined]

    @lsp_client.feature("hotline/output")
    def on_output(params):
        line = params["line"] if isinstance(params, dict) else params.line
        lsp_client.output.append(line)  # type: ignore[attr-defined]

    @lsp_client.feature("hotline/status")
    def on_status(params):
        lsp_client.statuses.append(params if isinstance(params, dict) else params._asdict())  # type: ignore[attr-defined]

    yield
    await asyncio.wait_for(lsp_client.shutdown_session(), 15)


async def until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


async def save(client: LanguageClient, path: Path, text: str, version: int) -> None:
    path.write_text(text)
    uri = path.as_uri()
    if version == 1:
        item = types.TextDocumentItem(uri=uri, language_id="rust", version=1, text=text)
        client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=item))
    else:
        change = types.TextDocumentContentChangeWholeDocument(text=text)
        document = types.VersionedTextDocumentIdentifier(uri=uri, version=version)
        client.text_document_did_change(types.DidChangeTextDocumentParams(document, [change]))
    client.text_document_did_save(types.DidSaveTextDocumentParams(types.TextDocumentIdentifier(uri)))


async def lenses(client: LanguageClient, path: Path) -> dict[int, list[str]]:
    params = types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=path.as_uri()))
    found = await asyncio.wait_for(client.text_document_code_lens_async(params), 10)
    out: dict[int, list[str]] = {}
    for lens in found or []:
        out.setdefault(lens.range.start.line, []).append(lens.command.title)
    return out


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines()) if needle in line)


async def test_bevy_startup_warning_and_parameter_refusal_sit_on_the_systems_fn_lines(
    editor: LanguageClient, tmp_path: Path
):
    crate = copy_app("bevy", tmp_path)
    params = types.InitializeParams(capabilities=client_capabilities("neovim"), root_uri=crate.as_uri())
    await asyncio.wait_for(editor.initialize_session(params), 15)
    run = types.ExecuteCommandParams(command="hotline.run")
    result = await asyncio.wait_for(editor.workspace_execute_command_async(run), 600)
    assert (result["ok"] if isinstance(result, dict) else result.ok) is True, result
    await until(lambda: any(line.startswith("frame=") for line in editor.output), 600, "frames")  # type: ignore[attr-defined]
    main_rs = crate / "src" / "main.rs"
    text = main_rs.read_text().replace("startup bodies={BODIES}", "startup bodies={BODIES} edited")
    await save(editor, main_rs, text, 1)

    def startup_warning():
        diags = editor.diagnostics.get(main_rs.as_uri(), [])
        return next((d for d in diags if d.code == "HL1013"), None)

    warning = await until(startup_warning, 60, "the HL1013 warning")
    assert warning.severity == types.DiagnosticSeverity.Warning
    assert warning.range.start.line == line_of(text, "fn spawn_bodies(")
    assert "Bevy system bevy_headless::spawn_bodies of the Startup schedule ran once at start-up" in (
        warning.message
    )

    text = text.replace(
        "fn report(frame: Res<FrameCount>,", "fn report(time: Res<Time>, frame: Res<FrameCount>,"
    )
    text = text.replace(
        'label=tick", frame.0, score.points);', 'label={:.1}", frame.0, score.points, time.delta_secs());'
    )
    await save(editor, main_rs, text, 2)
    await until(lambda: [s for s in editor.statuses if s["state"] == "error"], 60, "the refusal")  # type: ignore[attr-defined]
    found = await lenses(editor, main_rs)
    (title,) = found[line_of(text, "fn report(")]
    assert title.startswith(
        "⚠ patch refused (HL1010): the parameters of the Bevy system bevy_headless::report changed"
    ), found
    assert not [t for t in found.get(line_of(text, "fn main("), []) if "refused" in t], found
