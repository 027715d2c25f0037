"""Issue 14: an editor restart keeps the app. A language server that goes away (a window
reload, `:LspRestart`, a crash) leaves the app running; the next server re-attaches to it
at once, its state intact, and patches it. A server whose crate is owned by another engine
(a terminal's `hotline run`) offers to take it over, and does, without a restart."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
from conftest import LSP_SERVER, HotlineRunProcess, alive
from hotline.examples import copy_app
from lsprotocol import types
from pytest_lsp import LanguageClient, client_capabilities
from test_lsp import _get, collect, command, request, save, until


async def start_server(crate: Path, answer: str | None = None) -> LanguageClient:
    """A real `hotline lsp` and a client that collects statuses and output; `answer` is the
    action it picks when the server asks the user something."""
    client = await LSP_SERVER.start()
    collect(client)
    client.questions = []  # type: ignore[attr-defined]

    @client.feature(types.WINDOW_SHOW_MESSAGE_REQUEST)
    def on_question(params):
        client.questions.append(params)  # type: ignore[attr-defined]
        return types.MessageActionItem(title=answer) if answer else None

    await request(
        client.initialize_session(
            types.InitializeParams(
                capabilities=client_capabilities("visual-studio-code"), root_uri=crate.as_uri()
            )
        ),
        15,
    )
    return client


def frames(client: LanguageClient) -> list[int]:
    """The counter's `frame=` numbers it printed: its state, kept across engines."""
    return [
        int(line.split("frame=")[1].split()[0])
        for stream, line in client.output
        if stream == "stdout" and "frame=" in line
    ]


async def reattached(client: LanguageClient, pid: int) -> None:
    """The server says the app runs, with the pid of the app left running, and forwards its output."""
    running = await until(lambda: [s for s in client.statuses if s["state"] == "running"], 60, "re-attached")
    assert running[0]["pid"] == pid
    await until(lambda: frames(client), 10, "output after the re-attach")


async def patch_greeting(client: LanguageClient, counter: Path, greeting: str) -> None:
    """Saves the counter with a new greeting: `patched`, and the app prints it."""
    main_rs = counter / "src" / "main.rs"
    mark = len(client.statuses)
    await save(client, main_rs, main_rs.read_text().replace('    "hello"\n', f'    "{greeting}"\n'), 1)
    patched = await until(
        lambda: [s for s in client.statuses[mark:] if s["state"] in ("patched", "error")], 60, "the patch"
    )
    assert patched[0]["state"] == "patched", patched
    await until(
        lambda: any(line.startswith(f"{greeting} frame=") for _, line in client.output), 10, "new code"
    )


@pytest.fixture
def counter(tmp_path: Path) -> Path:
    return copy_app("counter", tmp_path)


async def test_a_restarted_language_server_re_attaches_to_the_app_and_patches_it(counter: Path):
    first = await start_server(counter)
    started = await command(first, "hotline.run", 240)
    pid = _get(started, "pid")
    try:
        await until(lambda: len(frames(first)) >= 3, 30, "the app's output")
        await asyncio.wait_for(first.shutdown_session(), 15)  # a window reload
        assert alive(pid)

        second = await start_server(counter)
        try:
            await reattached(second, pid)
            assert frames(second)[0] > frames(first)[-1]  # the same World, still counting

            await patch_greeting(second, counter, "re-attached")
            assert alive(pid)
        finally:
            await asyncio.wait_for(second.shutdown_session(), 15)
    finally:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


async def test_a_language_server_killed_with_sigkill_is_followed_by_one_that_re_attaches_and_patches(
    counter: Path,
):
    """A crash of the server: no shutdown, no detach, no reaper. The app keeps running (its
    output goes to files, its runtime retries the connection) and the next server takes it."""
    first = await start_server(counter)
    pid = _get(await command(first, "hotline.run", 240), "pid")
    try:
        await until(lambda: len(frames(first)) >= 3, 30, "the app's output")
        server = first._server
        assert server is not None
        server.kill()  # SIGKILL
        await asyncio.wait_for(server.wait(), 10)
        await first.stop()
        last = frames(first)[-1]
        await asyncio.sleep(1.5)  # the app runs on with no engine, and would crash on a dead pipe
        assert alive(pid)

        second = await start_server(counter)
        try:
            await reattached(second, pid)
            assert frames(second)[0] > last + 1  # the same World, counting all along

            await patch_greeting(second, counter, "after a crash")
        finally:
            await asyncio.wait_for(second.shutdown_session(), 15)
    finally:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


async def test_a_server_offers_to_take_over_an_app_hotline_run_owns_and_re_attaches_to_it(
    counter: Path, tmp_path: Path
):
    terminal = HotlineRunProcess(counter, None)  # the crate's own target/hotline, as the server's
    try:
        pid = terminal.until(lambda e: e["event"] == "app-started", timeout=240)["pid"]
        terminal.until(lambda e: e["event"] == "app-output")
        client = await start_server(counter, answer="Take over")
        try:
            running = await until(
                lambda: [s for s in client.statuses if s["state"] == "running"], 60, "the take-over"
            )
            assert running[0]["pid"] == pid
            [question] = client.questions
            assert question.message.startswith(
                f"Hotline: counter is already under another Hotline, pid {terminal.proc.pid} (its app is pid {pid})"
            )
            assert [a.title for a in question.actions] == ["Take over"]
            assert terminal.proc.wait(timeout=20) == 0  # the terminal's hotline let go and ended
            terminal.until_stderr(lambda line: "handed the app over to another Hotline; exiting" in line, 5)
            assert not [line for line in terminal.stderr if "Traceback" in line]
            assert alive(pid)
            await until(lambda: frames(client), 10, "output after the take-over")
        finally:
            await asyncio.wait_for(client.shutdown_session(), 15)
    finally:
        terminal.stop()
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


async def test_a_re_attached_app_is_patched_from_a_speculative_build_of_the_typed_text(counter: Path):
    from test_lsp_speculative import SPECULATED, last_patch, open_document, speculative_objects, type_text
    from test_lsp_speculative import save as save_file

    first = await start_server(counter)
    pid = _get(await command(first, "hotline.run", 240), "pid")
    try:
        await until(lambda: len(frames(first)) >= 2, 30, "the app's output")
        await asyncio.wait_for(first.shutdown_session(), 15)
        second = await start_server(counter)
        try:
            await until(lambda: [s for s in second.statuses if s["state"] == "running"], 60, "re-attached")
            main_rs = counter / "src" / "main.rs"
            howdy = main_rs.read_text().replace('    "hello"\n', '    "howdy"\n')
            open_document(second, main_rs)
            type_text(second, main_rs, howdy, 2)
            await until(lambda: speculative_objects(counter), 60, "the speculative build")
            mark = len(second.statuses)
            save_file(second, main_rs, howdy)
            patched = await until(
                lambda: [s for s in second.statuses[mark:] if s["state"] in ("patched", "error")], 60, "patch"
            )
            assert patched[0]["state"] == "patched", patched
            await until(
                lambda: any(line.startswith("howdy frame=") for _, line in second.output), 10, "new code"
            )
            assert SPECULATED in await last_patch(second)  # the `patched` event's speculative: true
        finally:
            await asyncio.wait_for(second.shutdown_session(), 15)
    finally:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
