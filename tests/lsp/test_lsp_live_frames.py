"""Live frames in the editor (HL1012): the language server, driven by a real LSP client
(pytest-lsp, as in test_lsp.py), shows a loop that keeps its old code as a warning
diagnostic and a lens on the function, and in the status."""

from __future__ import annotations

from pathlib import Path

from hotline.examples import copy_app
from lsprotocol import types
from pytest_lsp import LanguageClient
from test_lsp import lenses, line_of, open_and_run, save, until

LIVE_TITLE = "⚠ still running old code on thread worker-1 (HL1012)"


async def test_an_edited_thread_loop_is_an_hl1012_diagnostic_a_lens_and_a_status_on_worker(
    client: LanguageClient, tmp_path: Path
):
    crate = copy_app("live_loops", tmp_path)
    await open_and_run(client, crate)
    await until(lambda: any(line.startswith("worker v=1") for _, line in client.output), 30, "app output")
    main_rs = crate / "src" / "main.rs"
    text = main_rs.read_text().replace('println!("worker v=1', 'println!("worker v=2')
    await save(client, main_rs, text, 1)
    uri = main_rs.as_uri()

    def hl1012():
        return [d for d in client.diagnostics.get(uri, []) if d.code == "HL1012"]

    (diag,) = await until(hl1012, 60, "HL1012 diagnostic")
    worker_line = line_of(text, "fn worker()")
    assert diag.severity == types.DiagnosticSeverity.Warning
    assert diag.range.start.line == worker_line
    assert "live_loops::worker is running on thread worker-1" in diag.message
    found = await lenses(client, main_rs)
    assert LIVE_TITLE in found.get(worker_line, []), found
    patched = [s for s in client.statuses if s.get("state") == "patched"]
    assert "live_loops::worker still runs old code on thread worker-1 (HL1012)" in patched[-1]["message"]
