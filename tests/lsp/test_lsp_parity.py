"""Issue 15, parity of the editors with `hotline run` and with what rust-analyzer users expect,
through a real LSP client (pytest-lsp) against the real server: a save relaunches a crashed app,
diagnostics do not repeat rust-analyzer's warnings, the status carries the app's pid, the log
names the Python and the package in use, the engine's newer events are shown, and restart
lenses follow edits."""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import sys
from pathlib import Path

import hotline
import pytest
import pytest_lsp
from hotline.engine import schemas
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities
from test_lsp import COUNTER, _get, collect, command, lenses, line_of, request, save, until, write_app


def stdout_since(client: LanguageClient, mark: int) -> list[str]:
    return [line for stream, line in client.output[mark:] if stream == "stdout"]


async def state_after(client: LanguageClient, mark: int, state: str, timeout: float) -> list[dict]:
    """The statuses of `state` sent after the first `mark` ones, once there is one."""
    try:
        return await until(lambda: [s for s in client.statuses[mark:] if s["state"] == state], timeout, state)
    except AssertionError as e:
        raise AssertionError(f"{e}; statuses since: {client.statuses[mark:]}") from None


def build_tokens(client: LanguageClient) -> list[str]:
    return [str(t) for t in client.progress_reports if "-build-" in str(t)]


# -- 1. a save relaunches an app that exited, as `hotline run` does -------------------------


@pytest.fixture
def counter(tmp_path: Path) -> Path:
    from hotline.examples import copy_app

    assert COUNTER.is_dir()
    return copy_app("counter", tmp_path)


async def test_a_save_relaunches_the_app_after_it_crashed_and_not_after_stop(
    client: LanguageClient, counter: Path
):
    await request(
        client.initialize_session(
            types.InitializeParams(
                capabilities=client_capabilities("visual-studio-code"), root_uri=counter.as_uri()
            )
        ),
        15,
    )
    first = await command(client, "hotline.run", 240)
    assert _get(first, "ok") is True, first
    await until(
        lambda: any(line.startswith("hello frame=") for line in stdout_since(client, 0)), 30, "output"
    )
    main_rs = counter / "src" / "main.rs"
    original = main_rs.read_text()
    assert '    "hello"\n' in original

    # A patch makes the app panic: it exits with code 101.
    mark = len(client.statuses)
    await save(client, main_rs, original.replace('    "hello"\n', '    panic!("boom")\n'), 1)
    crashed = await until(
        lambda: [s for s in client.statuses[mark:] if s["state"] == "stopped"], 60, "the app's exit"
    )
    assert crashed == [{"state": "stopped", "exitCode": 101, "message": "exited with code 101"}], crashed
    with pytest.raises(ProcessLookupError):
        os.kill(_get(first, "pid"), 0)

    # The next save rebuilds and relaunches it, with Run's status and progress.
    tokens = set(build_tokens(client))
    mark, out = len(client.statuses), len(client.output)
    await save(client, main_rs, original.replace('"hello"', '"again"'), 2)
    running = await until(
        lambda: [s for s in client.statuses[mark:] if s["state"] == "running"], 240, "the relaunched app"
    )
    since = [(s["state"], s.get("message")) for s in client.statuses[mark:]]
    assert since[:2] == [
        ("building", "the app is not running: full rebuild and relaunch"),
        ("building", "fat build"),
    ], since
    pid = running[0]["pid"]
    assert pid != _get(first, "pid")
    assert "/target/hotline/run/" in os.readlink(f"/proc/{pid}/exe")
    await until(lambda: any(line.startswith("again frame=") for line in stdout_since(client, out)), 30, "new")
    (token,) = set(build_tokens(client)) - tokens
    await until(lambda: client.progress_reports[token][-1].kind == "end", 10, "the build progress to end")
    kinds = [r.kind for r in client.progress_reports[token]]
    assert kinds[0] == "begin" and kinds[-1] == "end", kinds

    # After the user's Stop, a save does not relaunch it.
    await command(client, "hotline.stop", 30)
    assert client.statuses[-1] == {"state": "stopped", "exitCode": None, "message": "stopped"}
    mark, out = len(client.statuses), len(client.output)
    await save(client, main_rs, original.replace('"hello"', '"after-stop"'), 3)
    # the lens request is answered after the save was handled: the app is not running
    assert (await lenses(client, main_rs))[line_of(original, "fn main")] == ["▶ Run with Hotline"]
    await asyncio.sleep(3)
    assert client.statuses[mark:] == [] and client.output[out:] == []
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    for status in client.statuses:
        assert not schemas.problems("lsp-status", status), status


# -- 2. diagnostics: what blocks a patch, rustc's warnings only on request ------------------

WARNING_APP = """\
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

static LIMIT: AtomicUsize = AtomicUsize::new(3);

fn word() -> &'static str {
    "one"
}

fn main() {
    let unused = 1;
    loop {
        println!("word={} limit={}", word(), LIMIT.load(Ordering::SeqCst));
        std::thread::sleep(Duration::from_millis(100));
    }
}
"""


@pytest.fixture
def warning_app(tmp_path: Path) -> Path:
    return write_app(tmp_path, "warns", WARNING_APP)


def shown(client: LanguageClient, uri: str) -> list[tuple[str, str, int, str]]:
    """(code, source, 0-based line, severity) of each diagnostic published for uri, sorted."""
    return sorted(
        (str(d.code), d.source, d.range.start.line, d.severity.name) for d in client.diagnostics.get(uri, [])
    )


@pytest.mark.parametrize("rustc_warnings", [None, True], ids=["default", "on"])
async def test_rustc_warnings_are_published_only_with_the_rustc_warnings_setting(
    client: LanguageClient, warning_app: Path, rustc_warnings: bool | None
):
    """By default (false; the live test below sets it false): rustc's errors (source `hotline (rustc)`) and Hotline's
    rules, warnings included (source `hotline`), never rustc's warnings, which rust-analyzer
    shows already. With rustcWarnings: true, rustc's warnings too (source `hotline (rustc)`)."""
    options = {} if rustc_warnings is None else {"rustcWarnings": rustc_warnings}
    await request(
        client.initialize_session(
            types.InitializeParams(
                capabilities=client_capabilities("neovim"),
                root_uri=warning_app.as_uri(),
                initialization_options=options,
            )
        ),
        15,
    )
    main_rs = warning_app / "src" / "main.rs"
    uri = main_rs.as_uri()

    def warned(text: str) -> list[tuple[str, str, int, str]]:
        """rustc's warning about `unused`, when rustcWarnings asks for it."""
        return [("unused_variables", "hotline (rustc)", line_of(text, "let unused"), "Warning")] * bool(
            rustc_warnings
        )

    # the full build: its diagnostics are published before the app starts
    assert _get(await command(client, "hotline.run", 240), "ok") is True
    await until(lambda: any(line.startswith("word=one") for line in stdout_since(client, 0)), 30, "output")
    assert shown(client, uri) == warned(WARNING_APP)
    assert not client.messages

    # a compile error
    broken = WARNING_APP.replace('    "one"\n', '    let x: u32 = "s";\n    "one"\n')
    mark = len(client.statuses)
    await save(client, main_rs, broken, 1)
    await state_after(client, mark, "error", 60)
    error = ("E0308", "hotline (rustc)", line_of(broken, "let x: u32"), "Error")
    assert shown(client, uri) == sorted([error, *warned(broken)])

    # a patch with a warning of Hotline's (HL1005: a static's initializer changed)
    fixed = WARNING_APP.replace('"one"', '"two"').replace("AtomicUsize::new(3)", "AtomicUsize::new(9)")
    mark = len(client.statuses)
    await save(client, main_rs, fixed, 2)
    await state_after(client, mark, "patched", 60)
    hl1005 = ("HL1005", "hotline", line_of(fixed, "static LIMIT"), "Warning")
    assert shown(client, uri) == sorted([hl1005, *warned(fixed)])
    await until(lambda: any(line.startswith("word=two") for line in stdout_since(client, 0)), 30, "new code")


async def test_rustc_warnings_changed_at_run_time_republishes_without_a_restart_notice(
    client: LanguageClient, warning_app: Path
):
    await request(
        client.initialize_session(
            types.InitializeParams(capabilities=client_capabilities("neovim"), root_uri=warning_app.as_uri())
        ),
        15,
    )
    uri = (warning_app / "src" / "main.rs").as_uri()
    assert _get(await command(client, "hotline.run", 240), "ok") is True
    assert shown(client, uri) == []
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"hotline": {"rustcWarnings": True}})
    )
    unused = line_of(WARNING_APP, "let unused")
    await until(lambda: shown(client, uri), 10, "rustc's warning")
    assert shown(client, uri) == [("unused_variables", "hotline (rustc)", unused, "Warning")]
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"hotline": {"rustcWarnings": False}})
    )
    await until(lambda: shown(client, uri) == [], 10, "the warning withdrawn")
    assert not client.messages  # no "take effect when the app is restarted"


# -- 3, 4, 6: the status's pid, the server's environment, the engine's newer events ----------

# The real server with a command "test.event" that hands it an engine event, as the engine would.
EVENT_SERVER = """
import hotline.lsp.server as server
from hotline.lsp import events

@server.server.command("test.event")
def event(ls, *args):
    events.handle_event(ls, dict(args[0]))
    return True

server.main()
"""


@pytest_lsp.fixture(config=ClientServerConfig(server_command=[sys.executable, "-c", EVENT_SERVER]))
async def event_client(lsp_client: LanguageClient):
    collect(lsp_client)
    yield
    await asyncio.wait_for(lsp_client.shutdown_session(), 15)


async def engine_event(client: LanguageClient, event: dict) -> None:
    await request(
        client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="test.event", arguments=[event])
        ),
        10,
    )


async def test_the_start_log_names_the_python_and_the_hotline_package(event_client: LanguageClient, tmp_path):
    client = event_client
    await request(
        client.initialize_session(
            types.InitializeParams(capabilities=client_capabilities("neovim"), root_uri=tmp_path.as_uri())
        ),
        15,
    )
    logged = await until(
        lambda: [m for m in client.log_messages if m.message.startswith("Hotline language server ")],
        10,
        "log",
    )
    version = importlib.metadata.version("hotline-reload")
    package = Path(hotline.__file__).resolve().parent
    assert logged[0].type == types.MessageType.Info
    assert logged[0].message == (
        f"Hotline language server {version}: Python {sys.version.split()[0]} ({sys.executable}), "
        f"hotline package {package} (hotline-reload {version})"
    )


async def test_engine_error_app_adopted_and_orphan_reason_are_shown(event_client: LanguageClient, tmp_path):
    client = event_client
    (tmp_path / "Cargo.toml").write_text('[package]\nname = "app"\nversion = "0.1.0"\n')
    await request(
        client.initialize_session(
            types.InitializeParams(capabilities=client_capabilities("neovim"), root_uri=tmp_path.as_uri())
        ),
        15,
    )
    await until(lambda: client.statuses, 10, "the idle status")
    assert client.statuses == [{"state": "idle"}] and not client.messages
    pid = os.getpid()
    await engine_event(
        client, {"event": "app-adopted", "pid": pid, "executable": "/x/app", "runtime": "injected", "seq": 3}
    )
    assert client.statuses[-1] == {"state": "running", "pid": pid, "runtime": "injected"}
    assert any(
        m.message == f"Hotline re-attached to the running app (pid {pid})"
        and m.type == types.MessageType.Info
        for m in client.log_messages
    )

    await engine_event(
        client, {"event": "engine-error", "message": "KeyError: 'x'", "log": "/tmp/hotline/engine.log"}
    )
    text = (
        "Hotline internal error: KeyError: 'x' (details: /tmp/hotline/engine.log); "
        "the app keeps running its last good code"
    )
    assert [(m.type, m.message) for m in client.messages] == [(types.MessageType.Error, text)]
    assert client.statuses[-1] == {"state": "error", "message": text, "pid": pid, "runtime": "injected"}

    await engine_event(client, {"event": "orphan-stopped", "pid": 4242, "reason": "the build changed"})
    await engine_event(client, {"event": "orphan-stopped", "pid": 4243})
    orphans = [m.message for m in client.log_messages if "earlier server" in m.message]
    assert orphans == [
        "Hotline stopped the app (pid 4242) an earlier server left running: the build changed",
        "Hotline stopped the app (pid 4243) an earlier server left running",
    ]

    # the app's exit ends its pid in the status
    await engine_event(client, {"event": "app-exited", "pid": pid, "code": 0})
    assert client.statuses[-1] == {"state": "stopped", "exitCode": 0, "message": "exited with code 0"}
    for status in client.statuses:
        assert not schemas.problems("lsp-status", status), status


# -- 7. restart-required lenses follow edits ------------------------------------------------

PROBE = """\
use std::sync::Mutex;

pub struct Player {
    hp: u32,
    shield: u64,
}

static PLAYERS: Mutex<Vec<Player>> = Mutex::new(Vec::new());

fn main() {}
"""


def test_restart_required_lenses_follow_lines_inserted_above(tmp_path: Path):
    from hotline.lsp import code_lens, settings
    from hotline.lsp.core import HotlineLanguageServer
    from pygls.workspace import Workspace

    crate = tmp_path / "probe"
    (crate / "src").mkdir(parents=True)
    (crate / "Cargo.toml").write_text('[package]\nname = "probe"\nversion = "0.1.0"\n')
    main_rs = crate / "src" / "main.rs"
    main_rs.write_text(PROBE)
    ls = HotlineLanguageServer()
    ls.protocol._workspace = Workspace(crate.as_uri())
    assert settings.configure(ls, {}, str(crate)) == []
    uri = main_rs.as_uri()
    ls.workspace.put_text_document(types.TextDocumentItem(uri=uri, language_id="rust", version=1, text=PROBE))
    refused = {
        "event": "patch-refused",
        "rule": "HL1002",
        "reason": "struct Player: size 4 → 16: restart required",
        "rude_edits": [
            {
                "rule": "HL1002",
                "severity": "error",
                "message": "struct Player: size 4 → 16",
                "file": "src/main.rs",
                "line": line_of(PROBE, "struct Player") + 1,
            },
            {
                "rule": "HL1004",
                "severity": "error",
                "message": "static PLAYERS changed type",
                "file": "src/main.rs",
                "line": line_of(PROBE, "static PLAYERS") + 1,
            },
        ],
    }
    ls.last_refused, ls.refused_sources = refused, code_lens.refused_texts(ls, refused)
    assert ls.refused_sources == {main_rs.resolve(): PROBE}

    def restart_lenses() -> list[tuple[int, str]]:
        return sorted(
            (lens.range.start.line, lens.command.title)
            for lens in code_lens.code_lenses(ls, uri)
            if lens.command.command == "hotline.restart"
        )

    layout, static = (
        "⚠ restart required (HL1002): layout change",
        "⚠ restart required (HL1004): static type changed",
    )
    assert restart_lenses() == [
        (line_of(PROBE, "struct Player"), layout),
        (line_of(PROBE, "static PLAYERS"), static),
    ]
    inserted = "// one\n// two\n" + PROBE
    ls.workspace.put_text_document(
        types.TextDocumentItem(uri=uri, language_id="rust", version=2, text=inserted)
    )
    assert restart_lenses() == [
        (line_of(inserted, "struct Player"), layout),
        (line_of(inserted, "static PLAYERS"), static),
    ]
    # the static's own line edited: its lens is dropped, the struct's stays
    edited = inserted.replace("static PLAYERS: Mutex<Vec<Player>>", "static PLAYERS: Mutex<Vec<u8>>")
    ls.workspace.put_text_document(
        types.TextDocumentItem(uri=uri, language_id="rust", version=3, text=edited)
    )
    assert restart_lenses() == [(line_of(edited, "struct Player"), layout)]
