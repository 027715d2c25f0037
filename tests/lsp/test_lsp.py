"""The Hotline language server driven by a real LSP client (pytest-lsp) against the counter example."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import pytest
import pytest_lsp
from conftest import alive
from hotline import REPO_ROOT, RUNTIME_DIR
from hotline.engine import schemas
from hotline.examples import copy_app
from hotline.lsp.diagnostics import group_by_uri
from hotline.lsp.lenses import function_lines, last_segment
from hotline.lsp.lifecycle import REATTACH_GRACE_S
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

COUNTER = REPO_ROOT / "examples" / "counter"


def _get(params, key, default=None):
    if isinstance(params, dict):
        return params.get(key, default)
    return getattr(params, key, default)


def _plain(params) -> dict:
    if isinstance(params, dict):
        return params
    if hasattr(params, "_asdict"):
        return params._asdict()
    return dict(vars(params))


def collect(lsp_client: LanguageClient) -> None:
    """What the tests read from the server: `statuses` (hotline/status), `output` (the app's
    lines, hotline/output) and `lens_refreshes` (workspace/codeLens/refresh)."""
    lsp_client.statuses = []  # type: ignore[attr-defined]
    lsp_client.output = []  # type: ignore[attr-defined]
    lsp_client.lens_refreshes = 0  # type: ignore[attr-defined]

    @lsp_client.feature("hotline/status")
    def on_status(params):
        lsp_client.statuses.append(_plain(params))  # type: ignore[attr-defined]

    @lsp_client.feature("hotline/output")
    def on_output(params):
        lsp_client.output.append((_get(params, "stream"), _get(params, "line")))  # type: ignore[attr-defined]

    @lsp_client.feature(types.WORKSPACE_CODE_LENS_REFRESH)
    def on_lens_refresh(params):
        lsp_client.lens_refreshes += 1  # type: ignore[attr-defined]


def write_app(folder: Path, name: str, main_rs: str) -> Path:
    """A one-file app depending on the runtime crate, in `folder/name`."""
    crate = folder / name
    (crate / "src").mkdir(parents=True)
    (crate / "Cargo.toml").write_text(
        f'[package]\nname = "{name}"\nversion = "0.1.0"\nedition = "2021"\n\n'
        f'[dependencies]\nhotline = {{ package = "hotline-runtime", path = "{RUNTIME_DIR}" }}\n'
    )
    (crate / "src" / "main.rs").write_text(main_rs)
    return crate


@pytest.fixture
def crate(tmp_path: Path) -> Path:
    return copy_app("counter", tmp_path)


async def until(predicate, timeout: float, what: str):
    """Polls state collected by the client's handlers (never waits on a notification that may have passed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


async def request(coro, timeout: float = 60):
    return await asyncio.wait_for(coro, timeout)


def lines_since(client, index: int) -> list[str]:
    return [line for stream, line in client.output[index:] if stream == "stdout"]


async def save(client: LanguageClient, path: Path, text: str, version: int) -> None:
    path.write_text(text)
    uri = path.as_uri()
    if version == 1:
        client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(uri=uri, language_id="rust", version=1, text=text)
            )
        )
    else:
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )
    client.text_document_did_save(
        types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )


async def lenses(client: LanguageClient, path: Path) -> dict[int, list[str]]:
    result = await request(
        client.text_document_code_lens_async(
            types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=path.as_uri()))
        ),
        10,
    )
    out: dict[int, list[str]] = {}
    for lens in result or []:
        out.setdefault(lens.range.start.line, []).append(lens.command.title)
    return out


async def open_and_run(client: LanguageClient, root: Path, settings: dict | None = None) -> dict:
    """Initializes the session on `root` (with these `hotline` settings) and runs its app;
    returns hotline.run's result."""
    await request(
        client.initialize_session(
            types.InitializeParams(
                capabilities=client_capabilities("neovim"),
                root_uri=root.as_uri(),
                initialization_options={"hotline": settings} if settings else None,
            )
        ),
        15,
    )
    result = await command(client, "hotline.run")
    assert _get(result, "ok") is True, result
    return result


async def command(client: LanguageClient, name: str, timeout: float = 120):
    return await request(
        client.workspace_execute_command_async(types.ExecuteCommandParams(command=name)), timeout
    )


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines()) if needle in line)


async def test_run_patch_diagnose_restart(client: LanguageClient, crate: Path):
    await request(
        client.initialize_session(
            types.InitializeParams(
                capabilities=client_capabilities("visual-studio-code"),
                root_uri=crate.as_uri(),
                workspace_folders=[types.WorkspaceFolder(uri=crate.as_uri(), name="counter")],
                initialization_options={"patchOnSave": True},
            )
        ),
        15,
    )
    main_rs = crate / "src" / "main.rs"
    uri = main_rs.as_uri()
    original = main_rs.read_text()

    before = await lenses(client, main_rs)
    assert before[line_of(original, "fn main")] == ["▶ Run with Hotline"]

    result = await request(
        client.workspace_execute_command_async(types.ExecuteCommandParams(command="hotline.run")), 120
    )
    assert _get(result, "ok") is True, result
    pid = _get(result, "pid")
    await until(
        lambda: any(line.startswith("hello frame=") for line in lines_since(client, 0)), 20, "hello output"
    )
    assert (await lenses(client, main_rs))[line_of(original, "fn main")] == ["⟳ Full rebuild"]
    assert client.progress_reports, "fat build progress"
    build = next(iter(client.progress_reports.values()))
    assert build[0].kind == "begin" and build[-1].kind == "end"

    # (a) save -> patch -> new output
    mark = len(client.output)
    bonjour = original.replace('"hello"', '"bonjour"')
    await save(client, main_rs, bonjour, 1)
    await until(
        lambda: any(line.startswith("bonjour frame=") for line in lines_since(client, mark)),
        20,
        "bonjour output",
    )
    await until(lambda: any(s["state"] == "patched" for s in client.statuses), 5, "patched status")

    # (b) code lens on exactly the fn greeting line
    found = await lenses(client, main_rs)
    patched_lines = [
        line for line, titles in found.items() if any(t.startswith("patched in") for t in titles)
    ]
    assert patched_lines == [line_of(bonjour, "fn greeting")], found
    markdown = await request(
        client.workspace_execute_command_async(types.ExecuteCommandParams(command="hotline.showLastPatch")),
        10,
    )
    assert "counter::greeting" in markdown and "rustc" in markdown
    # the disassembly diff (capstone): the string's length changed from 5 to 7 bytes
    assert "```diff" in markdown and "-mov edx, 5" in markdown and "+mov edx, 7" in markdown

    # (d) states in order
    states = [s["state"] for s in client.statuses]
    order = ["building", "running", "patching", "patched"]
    it = iter(states)
    assert all(state in it for state in order), states

    # (c) compile error -> diagnostic, the app keeps running
    broken = bonjour.replace('    "bonjour"', '    let x: u32 = "s";\n    "bonjour"')
    await save(client, main_rs, broken, 2)

    def e0308():
        return [d for d in client.diagnostics.get(uri, []) if d.code == "E0308"]

    diags = await until(e0308, 20, "E0308 diagnostic")
    assert diags[0].range.start.line == line_of(broken, "let x: u32")
    assert diags[0].code_description.href == "https://doc.rust-lang.org/error_codes/E0308.html"
    assert diags[0].severity == types.DiagnosticSeverity.Error
    mark = len(client.output)
    await until(lambda: len(lines_since(client, mark)) >= 3, 5, "output while broken")
    assert all(line.startswith("bonjour") for line in lines_since(client, mark))

    salut = bonjour.replace('"bonjour"', '"salut"')
    await save(client, main_rs, salut, 3)
    await until(lambda: uri in client.diagnostics and not client.diagnostics[uri], 20, "diagnostics cleared")
    await until(
        lambda: any(line.startswith("salut") for line in lines_since(client, mark)), 20, "salut output"
    )

    patch_tokens = [t for t in client.progress_reports if "patch" in str(t)]
    assert patch_tokens and all(
        [r.kind for r in client.progress_reports[t]] == ["begin", "end"] for t in patch_tokens
    )

    # saves arriving during a patch coalesce into one more patch, not one per save
    first = len(client.statuses)
    for version, word in enumerate(("one", "two", "three"), start=4):
        await save(client, main_rs, salut.replace('"salut"', f'"{word}"'), version)
    mark = len(client.output)
    await until(
        lambda: any(line.startswith("three") for line in lines_since(client, mark)), 20, "three output"
    )

    def settled():
        since = client.statuses[first:]
        started = sum(s["state"] == "patching" for s in since)
        ended = sum(s["state"] != "patching" for s in since)
        return started if started and started == ended else 0

    # the second patch may find nothing new: the first already compiled the last save
    assert 1 <= await until(settled, 10, "patches settled") <= 2, client.statuses[first:]
    assert all(s["state"] in ("patching", "patched", "running") for s in client.statuses[first:]), (
        client.statuses[first:]
    )

    # hotline.rebuild forces a full rebuild from clean artifacts and relaunches
    result = await request(
        client.workspace_execute_command_async(types.ExecuteCommandParams(command="hotline.rebuild")), 180
    )
    assert _get(result, "ok") is True, result
    assert _get(result, "pid") != pid
    os.kill(_get(result, "pid"), 0)
    pid = _get(result, "pid")

    # (e) restart relaunches with code changed on disk (no save, so no patch)
    main_rs.write_text(salut.replace('"salut"', '"ciao"'))
    lens_refreshes = client.lens_refreshes
    result = await request(
        client.workspace_execute_command_async(types.ExecuteCommandParams(command="hotline.restart")), 120
    )
    assert _get(result, "ok") is True, result
    new_pid = _get(result, "pid")
    assert new_pid != pid
    mark = len(client.output)
    await until(
        lambda: any(line.startswith("ciao frame=") for line in lines_since(client, mark)), 20, "ciao output"
    )
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the old app is gone

    result = await request(
        client.workspace_execute_command_async(types.ExecuteCommandParams(command="hotline.stop")), 20
    )
    assert client.statuses[-1]["state"] == "stopped"
    with pytest.raises(ProcessLookupError):
        os.kill(new_pid, 0)
    assert (await lenses(client, main_rs))[line_of(original, "fn main")] == ["▶ Run with Hotline"]
    assert client.lens_refreshes > lens_refreshes

    for status in client.statuses:
        assert not schemas.problems("lsp-status", status), status
    for stream, line in client.output:
        assert not schemas.problems("lsp-output", {"stream": stream, "line": line})

    # shutdown leaves the app to a successor (a window reload re-attaches to it), and with
    # none, the reaper stops it REATTACH_GRACE_S later (test_lsp_handover.py: a successor)
    result = await request(
        client.workspace_execute_command_async(types.ExecuteCommandParams(command="hotline.run")), 120
    )
    last_pid = _get(result, "pid")
    os.kill(last_pid, 0)
    await asyncio.wait_for(client.shutdown_session(), 15)
    client.shut_down = True
    os.kill(last_pid, 0)  # still running right after the shutdown
    await until(lambda: not alive(last_pid), REATTACH_GRACE_S + 10, "the reaper to stop the app")


async def test_bad_settings_are_reported(client: LanguageClient, crate: Path):
    await request(
        client.initialize_session(
            types.InitializeParams(
                capabilities=client_capabilities("neovim"),
                root_uri=crate.as_uri(),
                initialization_options={"patchOnSave": "yes", "appArgs": [1], "entryJumps": "off"},
            )
        ),
        15,
    )
    await until(lambda: client.messages, 5, "showMessage")
    assert client.messages[0].type == types.MessageType.Error
    assert "patchOnSave" in client.messages[0].message and "appArgs" in client.messages[0].message
    assert "entryJumps: 'off' is not of type 'boolean'" in client.messages[0].message
    await until(lambda: client.statuses, 5, "status")
    assert client.statuses[-1]["state"] == "error"


async def test_no_crate_is_reported(client: LanguageClient, tmp_path: Path):
    await request(
        client.initialize_session(
            types.InitializeParams(capabilities=client_capabilities("neovim"), root_uri=tmp_path.as_uri())
        ),
        15,
    )
    await until(lambda: client.messages, 5, "showMessage")
    assert "Cargo.toml" in client.messages[0].message
    result = await request(
        client.workspace_execute_command_async(types.ExecuteCommandParams(command="hotline.run")), 15
    )
    assert _get(result, "ok") is False


def test_diagnostic_conversion(tmp_path: Path):
    diag = {
        "message": "mismatched types",
        "code": {"code": "E0308", "explanation": "..."},
        "level": "error",
        "spans": [
            {
                "file_name": "src/main.rs",
                "line_start": 12,
                "line_end": 12,
                "column_start": 18,
                "column_end": 21,
                "is_primary": True,
                "label": "expected `u32`, found `&str`",
            },
            {
                "file_name": "src/main.rs",
                "line_start": 12,
                "line_end": 12,
                "column_start": 12,
                "column_end": 15,
                "is_primary": False,
                "label": "expected due to this",
            },
        ],
        "children": [],
        "rendered": "error[E0308]: mismatched types",
    }
    warning = {
        "message": "unused variable: `x`",
        "code": {"code": "unused_variables"},
        "level": "warning",
        "spans": [
            {
                "file_name": "src/lib.rs",
                "line_start": 1,
                "line_end": 1,
                "column_start": 5,
                "column_end": 6,
                "is_primary": True,
                "label": None,
            }
        ],
        "children": [],
    }
    no_span = {
        "message": "aborting due to 1 previous error",
        "code": None,
        "level": "error",
        "spans": [],
        "children": [],
    }
    groups = group_by_uri([diag, warning, no_span], tmp_path)
    main_uri = (tmp_path / "src" / "main.rs").as_uri()
    assert set(groups) == {main_uri, (tmp_path / "src" / "lib.rs").as_uri()}
    (d,) = groups[main_uri]
    assert (d.range.start.line, d.range.start.character, d.range.end.character) == (11, 17, 20)
    assert d.code == "E0308" and d.code_description.href.endswith("/E0308.html")
    assert d.related_information[0].message == "expected due to this"
    assert d.related_information[0].location.range.start.character == 11
    (w,) = groups[(tmp_path / "src" / "lib.rs").as_uri()]
    assert w.severity == types.DiagnosticSeverity.Warning and w.code_description is None


def test_function_lines():
    source = 'struct A;\nimpl A {\n    pub fn step(&self) {}\n}\nfn greeting() -> &\'static str { "x" }\n'
    assert function_lines(source, ["counter::greeting", "<counter::A>::step", "counter::gone"]) == {
        4: ["counter::greeting"],
        2: ["<counter::A>::step"],
    }
    assert last_segment("counter::main::{{closure}}") == "main"


async def test_relative_crate_setting(client: LanguageClient, crate: Path):
    await request(
        client.initialize_session(
            types.InitializeParams(
                capabilities=client_capabilities("neovim"),
                root_uri=crate.parent.as_uri(),
                initialization_options={"hotline": {"crate": "counter", "appArgs": [], "env": {"A": "1"}}},
            )
        ),
        15,
    )
    await until(lambda: client.statuses, 5, "status")
    assert client.statuses[-1] == {"state": "idle"} and not client.messages


def test_refused_and_run_lenses(live_app):
    """The lenses of a refusal the engine really produced: a layout change (HL1002) of `Player`,
    whose values live in the running app's static `PLAYERS`."""
    from hotline.lsp import code_lens, patching, settings
    from hotline.lsp.core import HotlineLanguageServer
    from pygls.workspace import Workspace

    app = live_app("probe")
    app.wait_line(lambda line: "players=ann:10" in line, 30)
    main_rs = app.crate / "src" / "main.rs"
    assert "static PLAYERS: Mutex<Vec<Player>>" in main_rs.read_text()
    app.edit("    hp: u32,\n}", "    hp: u32,\n    shield: u64,\n}")
    app.edit("hp: 10 }", "hp: 10, shield: 1 }")
    refused = app.patch(expect="patch-refused")
    assert refused["rule"] == "HL1002" and "struct Player" in refused["reason"], refused
    mark = app.mark()
    app.wait_line(lambda line: "players=ann:10" in line, 10, after=mark)  # still the old code

    ls = HotlineLanguageServer()
    ls.protocol._workspace = Workspace(app.crate.as_uri())
    assert settings.configure(ls, {}, str(app.crate)) == []
    ls.last_refused = refused
    source = main_rs.read_text()
    found = {
        (lens.range.start.line, lens.command.title, lens.command.command)
        for lens in code_lens.code_lenses(ls, main_rs.as_uri())
    }
    struct_line = line_of(source, "struct Player {")
    assert found == {
        (struct_line, "⚠ restart required (HL1002): layout change", "hotline.restart"),
        # the static that holds Players changed type with them
        (
            line_of(source, "static PLAYERS"),
            "⚠ restart required (HL1004): static type changed",
            "hotline.restart",
        ),
        (line_of(source, "fn main"), "▶ Run with Hotline", "hotline.run"),
    }, found
    assert code_lens.code_lenses(ls, (app.crate / "Cargo.toml").as_uri()) == []
    markdown = patching.last_patch_markdown(ls)
    assert markdown.startswith("### Patch refused (HL1002)") and "struct Player" in markdown, markdown


async def test_layout_change_is_a_diagnostic_and_a_restart_lens(client: LanguageClient, tmp_path: Path):
    from hotline.examples import copy_app

    probe = copy_app("probe", tmp_path)
    await open_and_run(client, probe)
    await until(lambda: any("players=ann:10" in line for _, line in client.output), 30, "app output")
    main_rs = probe / "src" / "main.rs"
    text = main_rs.read_text().replace("    hp: u32,\n}", "    hp: u32,\n    shield: u64,\n}", 1)
    text = text.replace("hp: 10 }", "hp: 10, shield: 1 }")
    await save(client, main_rs, text, 1)
    await until(lambda: any(s["state"] == "error" for s in client.statuses), 60, "refusal status")
    struct_line = line_of(text, "struct Player {")
    diags = await until(lambda: client.diagnostics.get(main_rs.as_uri()), 10, "HL1002 diagnostic")
    layout = next(d for d in diags if d.code == "HL1002")
    assert layout.range.start.line == struct_line
    # the type's name is underlined (issue 15, bug 5: it was struct_line:0-struct_line:0)
    name = text.splitlines()[struct_line].index("Player")
    assert (layout.range.start.character, layout.range.end.line, layout.range.end.character) == (
        name,
        struct_line,
        name + len("Player"),
    )
    assert "struct Player: size 32 → 40" in layout.message and layout.message.endswith(": restart required")
    assert layout.code_description.href.endswith("rude-edits.md#hl1002")
    got = await lenses(client, main_rs)
    assert got[struct_line] == ["⚠ restart required (HL1002): layout change"]
    mark = len(client.output)
    await until(lambda: any("players=ann:10" in line for line in lines_since(client, mark)), 10, "old code")


# The real server, reporting as window/logMessage "hotline-test ..." lines, each with its time (t=, monotonic):
# each Session it creates (the settings that object holds), each save that asks for a patch, each call of
# Session.patch (enter, exit) and the patch events. With the argument "hold", the patch of seq 1 is held
# inside Session.patch, right after its `patched` event, until a second save has arrived.
SESSION_REPORTING_SERVER = """
import sys, threading, time
import hotline.lsp.core as core
import hotline.lsp.server as server
from hotline.lsp import patching
from lsprotocol import types

HOLD = "hold" in sys.argv[1:]
second_save = threading.Event()
saves = 0


def report(message):
    text = f"hotline-test {message} t={time.monotonic():.6f}"
    params = types.LogMessageParams(type=types.MessageType.Log, message=text)
    server.server.loop.call_soon_threadsafe(server.server.window_log_message, params)


request_patch = patching.request_patch


def counting_request_patch(ls):
    global saves
    saves += 1
    report(f"save {saves}")
    if saves >= 2:
        second_save.set()
    request_patch(ls)


patching.request_patch = counting_request_patch
OUTCOMES = ("patch-started", "patched", "no-change", "compile-error", "patch-refused")


class ReportedSession(core.Session):
    def __init__(self, crate_dir, on_event, **kwargs):
        def reported(event):
            on_event(event)
            if event["event"] in OUTCOMES:
                report(f"event {event['event']} seq={event.get('seq')}")
            if HOLD and event["event"] == "patched" and event["seq"] == 1:
                report("holding patch 1")
                second_save.wait(30)

        super().__init__(crate_dir, reported, **kwargs)
        report(f"Session entry_jumps={self.entry_jumps!r} linker={self.build_spec.linker!r} app_args={self.app_args!r}")

    def patch(self, changed=None):
        report("patch-enter")
        try:
            return super().patch(changed)
        finally:
            report("patch-exit")


core.Session = ReportedSession
server.main()
"""


def reports(client: LanguageClient, prefix: str = "") -> list[tuple[str, float]]:
    """The reporting server's lines that start with prefix (without it), with their times."""
    out = []
    for m in client.log_messages:
        if m.message.startswith("hotline-test " + prefix):
            text, t = m.message[len("hotline-test " + prefix) :].rsplit(" t=", 1)
            out.append((text, float(t)))
    return out


def _collect_output(lsp_client: LanguageClient) -> None:
    lsp_client.output = []  # type: ignore[attr-defined]

    @lsp_client.feature("hotline/output")
    def on_output(params):
        lsp_client.output.append((_get(params, "stream"), _get(params, "line")))  # type: ignore[attr-defined]


@pytest_lsp.fixture(
    config=ClientServerConfig(server_command=[sys.executable, "-c", SESSION_REPORTING_SERVER])
)
async def reporting_client(lsp_client: LanguageClient):
    _collect_output(lsp_client)
    yield
    await asyncio.wait_for(lsp_client.shutdown_session(), 15)


@pytest_lsp.fixture(
    config=ClientServerConfig(server_command=[sys.executable, "-c", SESSION_REPORTING_SERVER, "hold"])
)
async def holding_client(lsp_client: LanguageClient):
    _collect_output(lsp_client)
    yield
    await asyncio.wait_for(lsp_client.shutdown_session(), 15)


def app_argv(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[1:-1]


def linked_by_lld(pid: int) -> bool:
    """rust-lld (rustc's default linker here) names itself in .comment; GNU ld (bfd) writes nothing there."""
    from elftools.elf.elffile import ELFFile

    with open(f"/proc/{pid}/exe", "rb") as f:
        comment = ELFFile(f).get_section_by_name(".comment")
        return comment is not None and b"Linker: LLD" in comment.data()


async def test_changed_settings_are_validated_and_apply_at_the_next_restart(
    reporting_client: LanguageClient, crate: Path
):
    client = reporting_client

    def sessions() -> list[str]:
        return [text for text, _ in reports(client, "Session ")]

    first_pid = _get(await open_and_run(client, crate), "pid")
    await until(sessions, 10, "the Session report")
    assert sessions() == ["entry_jumps=True linker=None app_args=[]"]
    assert app_argv(first_pid) == [] and linked_by_lld(first_pid)

    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"hotline": {"linker": "ld.gold.exe"}})
    )
    await until(lambda: client.messages, 10, "invalid settings message")
    assert client.messages[-1].type == types.MessageType.Error and "linker" in client.messages[-1].message
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"hotline": {"linker": "bfd", "appArgs": ["--quiet"]}})
    )
    await until(lambda: len(client.messages) >= 2, 10, "restart notice")
    assert "take effect when the app is restarted" in client.messages[-1].message
    assert len(sessions()) == 1 and app_argv(first_pid) == []  # the running app keeps its settings
    result = await command(client, "hotline.restart", 180)
    assert _get(result, "ok") is True, result
    pid = _get(result, "pid")
    assert pid != first_pid
    await until(lambda: len(sessions()) == 2, 10, "the new Session report")
    assert sessions()[1] == "entry_jumps=True linker='bfd' app_args=['--quiet']"
    # ... and they took effect: the new app was linked by GNU ld and started with the flag.
    assert app_argv(pid) == ["--quiet"]
    assert not linked_by_lld(pid)
    mark = len(client.output)
    await until(
        lambda: any(line.startswith("hello frame=") for line in lines_since(client, mark)), 30, "output"
    )


async def test_a_save_during_a_patch_is_patched_after_it_in_order(
    holding_client: LanguageClient, crate: Path
):
    """Two saves in quick succession, the second while the first one's patch is still inside Session.patch:
    two patches, seq 1 then seq 2, the second started only after the first returned, newest text last."""
    client = holding_client
    await open_and_run(client, crate)
    await until(lambda: any(line.startswith("hello frame=") for line in lines_since(client, 0)), 30, "output")
    main_rs = crate / "src" / "main.rs"
    original = main_rs.read_text()
    await save(client, main_rs, original.replace('"hello"', '"first"'), 1)
    await until(lambda: reports(client, "holding patch 1"), 60, "patch 1 held after its patched event")
    await save(client, main_rs, original.replace('"hello"', '"second"'), 2)
    await until(lambda: len(reports(client, "patch-exit")) == 2, 60, "two patches")
    timeline = [
        text for text, _ in sorted(reports(client), key=lambda r: r[1]) if not text.startswith("Session")
    ]
    assert timeline == [
        "save 1",
        "patch-enter",
        "event patch-started seq=1",
        "event patched seq=1",
        "holding patch 1",
        "save 2",  # the second save arrives while the first patch is in Session.patch
        "patch-exit",
        "patch-enter",  # and its patch begins only after the first one returned
        "event patch-started seq=2",
        "event patched seq=2",
        "patch-exit",
    ], timeline
    mark = len(client.output)
    await until(
        lambda: any(line.startswith("second frame=") for line in lines_since(client, mark)), 10, "output"
    )
    printed = [line.split()[0] for line in lines_since(client, 0) if " frame=" in line]
    switches = [word for i, word in enumerate(printed) if i == 0 or printed[i - 1] != word]
    assert switches == ["hello", "first", "second"], switches


async def test_entry_jumps_from_the_settings_reaches_the_session_at_the_next_start(
    reporting_client: LanguageClient, crate: Path
):
    client = reporting_client

    def sessions() -> list[str]:
        return [text for text, _ in reports(client, "Session ")]

    await request(
        client.initialize_session(
            types.InitializeParams(
                capabilities=client_capabilities("neovim"),
                root_uri=crate.as_uri(),
                initialization_options={"hotline": {"entryJumps": False, "linker": "bfd"}},
            )
        ),
        15,
    )
    result = await command(client, "hotline.run")
    assert _get(result, "ok") is True, result
    await until(sessions, 10, "the Session report")
    assert sessions() == ["entry_jumps=False linker='bfd' app_args=[]"]
    assert not client.messages  # the schema accepts the setting
    mark = len(client.output)
    await until(
        lambda: any(line.startswith("hello frame=") for line in lines_since(client, mark)), 30, "output"
    )

    # Unset: the default (on), once the app starts again; the running app keeps its Session until then.
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"hotline": {}}))
    await until(lambda: client.messages, 10, "restart notice")
    assert "take effect when the app is restarted" in client.messages[-1].message
    assert len(sessions()) == 1
    result = await command(client, "hotline.restart", 180)
    assert _get(result, "ok") is True, result
    await until(lambda: len(sessions()) == 2, 10, "the new Session report")
    assert sessions() == [
        "entry_jumps=False linker='bfd' app_args=[]",
        "entry_jumps=True linker=None app_args=[]",
    ]


async def test_saving_cargo_toml_rebuilds_and_relaunches(client: LanguageClient, crate: Path):
    first_pid = _get(await open_and_run(client, crate), "pid")
    manifest = crate / "Cargo.toml"
    manifest.write_text(manifest.read_text().replace('version = "0.1.0"', 'version = "0.1.1"'))
    mark = len(client.statuses)
    client.text_document_did_save(
        types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=manifest.as_uri()))
    )
    await until(lambda: [s for s in client.statuses[mark:] if s["state"] == "running"], 120, "relaunch")
    assert any("Cargo.toml changed" in (s.get("message") or "") for s in client.statuses[mark:])
    with pytest.raises(ProcessLookupError):
        os.kill(first_pid, 0)


async def test_a_save_during_the_full_build_is_not_lost(client: LanguageClient, crate: Path):
    await request(
        client.initialize_session(
            types.InitializeParams(capabilities=client_capabilities("neovim"), root_uri=crate.as_uri())
        ),
        15,
    )
    main_rs = crate / "src" / "main.rs"
    run = asyncio.ensure_future(
        client.workspace_execute_command_async(types.ExecuteCommandParams(command="hotline.run"))
    )
    await until(lambda: any(s["state"] == "building" for s in client.statuses), 30, "building")
    await save(client, main_rs, main_rs.read_text().replace('"hello"', '"during-build"'), 1)
    result = await request(run, 120)
    assert _get(result, "ok") is True, result
    mark = 0
    await until(
        lambda: any(line.startswith("during-build") for line in lines_since(client, mark)), 30, "newest code"
    )
