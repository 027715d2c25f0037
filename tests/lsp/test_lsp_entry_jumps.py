"""Entry-jump warnings in the editor: the language server (driven by a real LSP client,
pytest-lsp, as in test_lsp.py) turns the `patched` event's HL1007 warning into a diagnostic."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hotline.examples import copy_app
from lsprotocol import types
from pytest_lsp import LanguageClient, client_capabilities
from test_lsp import _get, until


async def test_signature_change_is_an_hl1007_warning_diagnostic_at_the_function(
    client: LanguageClient, tmp_path: Path
):
    crate = copy_app("jumps", tmp_path)
    await asyncio.wait_for(
        client.initialize_session(
            types.InitializeParams(capabilities=client_capabilities("neovim"), root_uri=crate.as_uri())
        ),
        15,
    )
    result = await asyncio.wait_for(
        client.workspace_execute_command_async(types.ExecuteCommandParams(command="hotline.run")), 180
    )
    assert _get(result, "ok") is True, result
    await until(lambda: any(line.startswith("long ") for _, line in client.output), 30, "app output")

    main_rs = crate / "src" / "main.rs"
    text = main_rs.read_text()
    for old, new in [
        ("fn scale(x: u32) -> u32 {\n    x * 3\n}", "fn scale(x: u64) -> u64 {\n    x * 5_000_000_000\n}"),
        ("    scale(round) as u64\n", "    scale(round as u64)\n"),
        ("let direct = scale(round);", "let direct = scale(round as u64);"),
    ]:
        assert old in text
        text = text.replace(old, new, 1)
    main_rs.write_text(text)
    uri = main_rs.as_uri()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="rust", version=1, text=text)
        )
    )
    client.text_document_did_save(
        types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )

    def hl1007():
        return [d for d in client.diagnostics.get(uri, []) if d.code == "HL1007"]

    (diag,) = await until(hl1007, 60, "HL1007 diagnostic")
    assert diag.severity == types.DiagnosticSeverity.Warning
    scale_line = next(i for i, line in enumerate(text.splitlines()) if "fn scale(x: u64) -> u64" in line)
    assert diag.range.start.line == scale_line
    assert "jumps::scale" in diag.message
