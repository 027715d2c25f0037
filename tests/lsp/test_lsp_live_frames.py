"""Live frames in the editor (HL1012): the language server, driven by a real LSP client
(pytest-lsp, as in test_lsp.py), shows a loop that keeps its old code as a warning
diagnostic and a lens on the function, and in the status; a function whose old frame has
returned since loses all three."""

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


async def test_hl1012_on_a_function_that_returned_since_the_patch_leaves_its_diagnostic_lens_and_status(
    client: LanguageClient, tmp_path: Path
):
    """`frame()` waits 300 ms in a sleep on the main thread: the patch's stop finds it there
    (HL1012); it returns and runs its new code, and `returned` takes the warning away."""
    crate = copy_app("live_loops", tmp_path)
    await open_and_run(client, crate, {"appArgs": ["frames"]})
    await until(lambda: any(line == "frame v=1 pause=300" for _, line in client.output), 30, "app output")
    main_rs = crate / "src" / "main.rs"
    text = main_rs.read_text().replace('println!("frame v=1', 'println!("frame v=2')
    await save(client, main_rs, text, 1)
    uri = main_rs.as_uri()
    frame_line = line_of(text, "fn frame(")

    def hl1012():
        return [d for d in client.diagnostics.get(uri, []) if d.code == "HL1012"]

    def patched() -> list[dict]:
        return [s for s in client.statuses if s.get("state") == "patched"]

    live = "live_loops::frame still runs old code on thread live_loops"
    first = await until(patched, 60, "patched")
    assert live in (first[0].get("message") or ""), first  # HL1012 was said
    await until(lambda: any(line == "frame v=2 pause=300" for _, line in client.output), 10, "new output")
    await until(lambda: "HL1012" not in (patched()[-1].get("message") or ""), 10, "status without HL1012")
    assert not hl1012(), hl1012()
    found = await lenses(client, main_rs)
    assert not [t for t in found.get(frame_line, []) if "HL1012" in t], found
    assert [t for t in found.get(frame_line, []) if t.startswith("patched in ")], found
