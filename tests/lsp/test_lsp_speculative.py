"""Speculative builds from the editor (issue 18), driven by a real LSP client as in test_lsp.py:
a buffer left unchanged for `speculativeDelayMs` is compiled in a shadow of the workspace, and
saving that text patches from the build; nothing reaches the app before the save."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hotline.examples import copy_app
from lsprotocol import types
from pytest_lsp import LanguageClient, client_capabilities
from test_lsp import _get, command, lenses, line_of, lines_since, request, until

SPECULATED = "(compiled while you typed)"  # in hotline.showLastPatch, for a speculative patch


@pytest.fixture
def crate(tmp_path: Path) -> Path:
    return copy_app("counter", tmp_path)


async def start(
    client: LanguageClient, crate: Path, options: dict | None = None, first: str = "hello frame="
) -> None:
    await request(
        client.initialize_session(
            types.InitializeParams(
                capabilities=client_capabilities("visual-studio-code"),
                root_uri=crate.as_uri(),
                initialization_options=options or {},
            )
        ),
        15,
    )
    result = await command(client, "hotline.run")
    assert _get(result, "ok") is True, result
    await until(lambda: any(s.startswith(first) for s in lines_since(client, 0)), 60, "output")


def open_document(client: LanguageClient, path: Path) -> None:
    item = types.TextDocumentItem(uri=path.as_uri(), language_id="rust", version=1, text=path.read_text())
    client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=item))


def type_text(client: LanguageClient, path: Path, text: str, version: int) -> None:
    """The buffer changes; the file on disk does not."""
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=path.as_uri(), version=version),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
        )
    )


def save(client: LanguageClient, path: Path, text: str) -> None:
    path.write_text(text)
    uri = types.TextDocumentIdentifier(uri=path.as_uri())
    client.text_document_did_save(types.DidSaveTextDocumentParams(text_document=uri))


def speculative_objects(crate: Path) -> list[Path]:
    """The objects of finished speculative builds not yet used or thrown away."""
    return sorted((crate / "target" / "hotline" / "shadow-objects").glob("*/*/*.rcgu.o"))  # build/crate


def shadow_of(crate: Path) -> Path:
    return crate / "target" / "hotline" / "shadow" / crate.name


async def last_patch(client: LanguageClient) -> str:
    return await command(client, "hotline.showLastPatch", 10)


def thrown_away(trace: str) -> float:
    """The rustc CPU seconds of speculative builds thrown away, from one trace line."""
    return float(trace.split(" s used, ")[1].removesuffix(" s thrown away"))


def speculation_trace(client: LanguageClient) -> list[str]:
    """The server's log lines with the speculative builds' running totals."""
    prefix = "Hotline speculative builds: "
    return [m.message.removeprefix(prefix) for m in client.log_messages if m.message.startswith(prefix)]


async def test_a_change_typed_paused_and_saved_is_patched_from_the_speculative_build(
    client: LanguageClient, crate: Path
):
    await start(client, crate)
    elsewhere = crate.parent / "elsewhere.rs"  # open in the editor, not part of the crate
    elsewhere.write_text("fn main() {}\n")
    open_document(client, elsewhere)
    type_text(client, elsewhere, 'fn main() { println!("x"); }\n', 2)
    await asyncio.sleep(1.0)
    assert not shadow_of(crate).exists()  # no build for a document outside the crate

    main_rs = crate / "src" / "main.rs"
    original = main_rs.read_text()
    bonjour = original.replace('"hello"', '"bonjour"')
    open_document(client, main_rs)
    type_text(client, main_rs, bonjour, 2)
    shadow = shadow_of(crate) / "src" / "main.rs"
    await until(lambda: shadow.exists() and shadow.read_text() == bonjour, 20, "the shadow's text")
    await until(lambda: speculative_objects(crate), 60, "the speculative build")
    assert main_rs.read_text() == original  # the user's file is not written
    mark = len(client.output)
    await until(lambda: len(lines_since(client, mark)) >= 3, 5, "output")
    assert all(s.startswith("hello frame=") for s in lines_since(client, 0))  # not applied before the save

    mark = len(client.output)
    save(client, main_rs, bonjour)
    await until(lambda: any(s.startswith("bonjour frame=") for s in lines_since(client, mark)), 20, "bonjour")
    shown = await last_patch(client)
    assert SPECULATED in shown
    assert "Compiled, diffed and linked while you typed: the save only sent it." in shown
    await until(lambda: "1 used by a save" in "".join(speculation_trace(client)[-1:]), 5, "the trace")
    assert speculation_trace(client)[-1].startswith(
        "1 started, 1 ended, 1 used by a save, 0 killed; rustc CPU "
    )
    assert speculation_trace(client)[-1].endswith(" s used, 0.00 s thrown away")
    found = await lenses(client, main_rs)  # the lens names the real file's line
    patched = [line for line, titles in found.items() if any(t.startswith("patched in") for t in titles)]
    assert patched == [line_of(bonjour, "fn greeting")], found


async def test_a_change_typed_then_undone_is_never_applied(client: LanguageClient, crate: Path):
    await start(client, crate, {"speculativeDelayMs": 100})
    main_rs = crate / "src" / "main.rs"
    original = main_rs.read_text()
    open_document(client, main_rs)
    type_text(client, main_rs, original.replace('"hello"', '"typed"'), 2)
    await until(lambda: "1 ended" in "".join(speculation_trace(client)[-1:]), 60, "the speculative build")
    assert speculative_objects(crate)  # finished, kept
    type_text(client, main_rs, original, 3)  # undone: the buffer is the file again
    await until(lambda: not speculative_objects(crate), 10, "the build thrown away")
    # the totals reach the client a round trip after the objects are deleted
    await until(lambda: thrown_away(speculation_trace(client)[-1]) > 0, 5, "the build counted as thrown away")
    assert speculation_trace(client)[-1].startswith(
        "1 started, 1 ended, 0 used by a save, 0 killed; rustc CPU 0.00 s used, "
    )

    mark = len(client.output)
    saved = original.replace('"hello"', '"saved"')
    type_text(client, main_rs, saved, 4)
    save(client, main_rs, saved)  # at once: no pause, no speculative build
    await until(lambda: any(s.startswith("saved frame=") for s in lines_since(client, mark)), 20, "saved")
    assert SPECULATED not in await last_patch(client)
    assert not [s for s in lines_since(client, 0) if s.startswith("typed")]


async def test_a_library_of_the_workspace_typed_paused_and_saved_is_patched_from_the_speculative_build(
    client: LanguageClient, tmp_path: Path
):
    member = copy_app("workspace", tmp_path) / "app"
    await start(client, member, {"speculativeDelayMs": 100}, first="lib-v1")
    library = member.parent / "engine" / "src" / "lib.rs"
    typed = library.read_text().replace("lib-v1", "lib-typed")
    open_document(client, library)
    type_text(client, library, typed, 2)
    await until(lambda: "1 ended" in "".join(speculation_trace(client)[-1:]), 60, "the speculative build")
    mark = len(client.output)
    save(client, library, typed)
    await until(lambda: any(s.startswith("lib-typed") for s in lines_since(client, mark)), 20, "lib-typed")
    shown = await last_patch(client)
    assert SPECULATED in shown and "Compiled, diffed and linked while you typed" in shown
    await until(lambda: "1 used by a save" in "".join(speculation_trace(client)[-1:]), 5, "the trace")


async def test_speculative_builds_can_be_turned_off(client: LanguageClient, crate: Path):
    await start(client, crate, {"speculativeBuilds": False})
    main_rs = crate / "src" / "main.rs"
    bonjour = main_rs.read_text().replace('"hello"', '"bonjour"')
    open_document(client, main_rs)
    type_text(client, main_rs, bonjour, 2)
    await asyncio.sleep(1.5)
    assert not shadow_of(crate).exists()
    mark = len(client.output)
    save(client, main_rs, bonjour)
    await until(lambda: any(s.startswith("bonjour frame=") for s in lines_since(client, mark)), 20, "bonjour")
    assert SPECULATED not in await last_patch(client)


async def test_with_speculative_diagnostics_a_typed_error_is_published_before_the_save_and_cleared_when_fixed(
    client: LanguageClient, crate: Path
):
    await start(client, crate, {"speculativeDiagnostics": True, "speculativeDelayMs": 100})
    main_rs, uri = crate / "src" / "main.rs", (crate / "src" / "main.rs").as_uri()
    original = main_rs.read_text()
    broken = original.replace('    "hello"', '    let x: u32 = "s";\n    "hello"')
    open_document(client, main_rs)
    type_text(client, main_rs, broken, 2)

    def e0308():
        return [d for d in client.diagnostics.get(uri, []) if d.code == "E0308"]

    diags = await until(e0308, 60, "E0308 from the typed text")
    assert diags[0].range.start.line == line_of(broken, "let x: u32")  # the real file's line
    assert diags[0].source == "hotline (rustc)"
    assert main_rs.read_text() == original  # not saved: the app runs on
    type_text(client, main_rs, original.replace('"hello"', '"fixed"'), 3)
    await until(lambda: uri in client.diagnostics and not client.diagnostics[uri], 60, "diagnostics cleared")


async def test_by_default_a_typed_error_is_not_published(client: LanguageClient, crate: Path):
    await start(client, crate, {"speculativeDelayMs": 100})
    main_rs = crate / "src" / "main.rs"
    broken = main_rs.read_text().replace('    "hello"', '    let x: u32 = "s";\n    "hello"')
    open_document(client, main_rs)
    type_text(client, main_rs, broken, 2)
    await until(lambda: speculation_trace(client), 60, "the speculative build's end")
    await asyncio.sleep(0.5)
    assert not client.diagnostics.get(main_rs.as_uri())


async def test_a_keystroke_kills_the_speculative_build_in_flight_and_the_next_pause_builds_the_new_text(
    client: LanguageClient, crate: Path
):
    await start(client, crate, {"speculativeDelayMs": 100})
    main_rs = crate / "src" / "main.rs"
    original = main_rs.read_text()
    first, second = original.replace('"hello"', '"first"'), original.replace('"hello"', '"second"')
    open_document(client, main_rs)
    type_text(client, main_rs, first, 2)
    shadow = shadow_of(crate) / "src" / "main.rs"
    # written just before its rustc starts; the first build in a cold shadow takes a while
    await until(lambda: shadow.exists() and shadow.read_text() == first, 20, "the first build's start")
    type_text(client, main_rs, second, 3)
    await until(
        lambda: speculation_trace(client)[-1:] and "2 ended" in speculation_trace(client)[-1], 60, "both"
    )
    assert speculation_trace(client)[-1].startswith("2 started, 2 ended, 0 used by a save, 1 killed;")
    mark = len(client.output)
    save(client, main_rs, second)
    await until(lambda: any(s.startswith("second frame=") for s in lines_since(client, mark)), 20, "second")
    assert SPECULATED in await last_patch(client)
    assert not [s for s in lines_since(client, 0) if s.startswith("first")]
