"""Issue 15, bugs 1 and 3-7: what the editors show is exact. A real LSP client (pytest-lsp)
against the real server, on a small app with a method (`impl Counter { fn label(&self) }`),
and unit checks of the pieces the server assembles its answers from."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
import pytest_lsp
from hotline.engine.build.rustc_diagnostics import error_count
from hotline.lsp import lenses as vocabulary
from hotline.lsp.diagnostics import group_by_uri, rude_edit_diagnostic
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities
from test_lsp import _get, command, lenses, line_of, request, save, until, write_app

MAIN_RS = """\
use std::time::Duration;

struct Counter {
    n: u64,
}

impl Counter {
    fn label(&self) -> String {
        format!("label=one n={}", self.n)
    }
}

fn tick(counter: &mut Counter) {
    counter.n += 1;
    println!("tick {}", counter.label());
}

fn main() {
    let mut counter = Counter { n: 0 };
    loop {
        tick(&mut counter);
        std::thread::sleep(Duration::from_millis(100));
    }
}
"""


@pytest.fixture
def method_app(tmp_path: Path) -> Path:
    return write_app(tmp_path, "methods", MAIN_RS)


def patched_lenses(found: dict[int, list[str]]) -> list[int]:
    return sorted(line for line, titles in found.items() if any(t.startswith("patched in") for t in titles))


async def test_method_lens_follows_edits_and_one_error_counts_one(client: LanguageClient, method_app: Path):
    """Bug 1: a body-only edit of a method puts `patched in` on the method itself, and only
    there (bug 2: not on its caller `tick` nor on `main`). Bug 3: after a line is inserted
    above, the lens is on the method's new line. Bug 4: one rustc error is `1 error`."""
    await request(
        client.initialize_session(
            types.InitializeParams(capabilities=client_capabilities("neovim"), root_uri=method_app.as_uri())
        ),
        15,
    )
    result = await command(client, "hotline.run", 180)
    assert _get(result, "ok") is True, result
    await until(lambda: any("label=one" in line for _, line in client.output), 30, "first output")

    main_rs = method_app / "src" / "main.rs"
    text = MAIN_RS.replace("label=one", "label=two")
    await save(client, main_rs, text, 1)
    await until(lambda: any("label=two" in line for _, line in client.output), 30, "patched output")
    patched = await until(lambda: [s for s in client.statuses if s["state"] == "patched"], 10, "patched")
    assert patched[-1]["functions"] == ["methods::Counter::label"], patched[-1]
    assert patched_lenses(await lenses(client, main_rs)) == [line_of(text, "fn label")]

    # a line inserted above, not saved: the lens follows the method
    moved = text.replace("struct Counter {", "// a comment\n\nstruct Counter {")
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=main_rs.as_uri(), version=2),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=moved)],
        )
    )
    assert line_of(moved, "fn label") == line_of(text, "fn label") + 2
    assert patched_lenses(await lenses(client, main_rs)) == [line_of(moved, "fn label")]

    # one error, not two ("aborting due to 1 previous error" is no error of its own)
    broken = moved.replace('format!("label=two', 'let x: u32 = "s";\n        format!("label=two')
    mark = len(client.statuses)
    await save(client, main_rs, broken, 3)
    error = await until(
        lambda: [s for s in client.statuses[mark:] if s["state"] == "error"], 60, "compile error status"
    )
    assert error[-1]["message"] == "compile error (1 error)", error[-1]


# A server whose command "test.progress" begins, reports and ends one progress.
PROGRESS_SERVER = """
import hotline.lsp.server as server

@server.server.command("test.progress")
def progress(ls, *args):
    token = ls.work_progress.begin("test", "Hotline: test", "0/1", 0)
    ls.work_progress.report(token, "1/1", 100)
    ls.work_progress.end(token, "done")
    return token

server.main()
"""


@pytest_lsp.fixture(config=ClientServerConfig(server_command=[sys.executable, "-c", PROGRESS_SERVER]))
async def slow_create_client(lsp_client: LanguageClient):
    """A client that answers window/workDoneProgress/create only after 0.5 s."""
    lsp_client.events = []  # type: ignore[attr-defined]
    fm = lsp_client.protocol.fm
    default_create = fm.features[types.WINDOW_WORK_DONE_PROGRESS_CREATE]
    default_progress = fm.features[types.PROGRESS]

    async def create(params):
        lsp_client.events.append(("create", params.token))  # type: ignore[attr-defined]
        await asyncio.sleep(0.5)
        default_create(params)
        lsp_client.events.append(("answered", params.token))  # type: ignore[attr-defined]

    def progress(params):
        kind = params.value.get("kind") if isinstance(params.value, dict) else params.value.kind
        lsp_client.events.append((kind, params.token))  # type: ignore[attr-defined]
        default_progress(params)

    fm.features[types.WINDOW_WORK_DONE_PROGRESS_CREATE] = create
    fm.features[types.PROGRESS] = progress
    yield
    await asyncio.wait_for(lsp_client.shutdown_session(), 15)


async def test_progress_begins_only_after_the_client_answered_create(
    slow_create_client: LanguageClient, tmp_path
):
    """Bug 7: `$/progress` begin waits for the client's answer to window/workDoneProgress/create."""
    client = slow_create_client
    await request(
        client.initialize_session(
            types.InitializeParams(
                capabilities=client_capabilities("visual-studio-code"), root_uri=tmp_path.as_uri()
            )
        ),
        15,
    )
    token = await request(
        client.workspace_execute_command_async(types.ExecuteCommandParams(command="test.progress"))
    )
    await until(lambda: ("end", token) in client.events, 10, "progress end")
    events = [kind for kind, t in client.events if t == token]
    assert events == ["create", "answered", "begin", "report", "end"], client.events
    assert [r.kind for r in client.progress_reports[token]] == ["begin", "report", "end"]


# -- unit checks ----------------------------------------------------------------------------


def test_one_rustc_error_is_one_error():
    """Bug 4: rustc's closing "aborting due to 1 previous error" (no span) is no error."""
    diags = [
        {"message": "mismatched types", "level": "error", "spans": [{"file_name": "src/main.rs"}]},
        {"message": "aborting due to 1 previous error", "level": "error", "spans": []},
        {"message": "unused variable", "level": "warning", "spans": [{"file_name": "src/main.rs"}]},
    ]
    assert error_count(diags) == 1
    two = [
        diags[0],
        diags[0],
        {"message": "aborting due to 2 previous errors", "level": "error", "spans": []},
    ]
    assert error_count(two) == 2


def test_the_cli_counts_one_error(capsys):
    from hotline.cli.console import Console
    from hotline.cli.printer import HumanPrinter

    HumanPrinter(Console(sys.stderr), lambda: True)(
        {
            "event": "compile-error",
            "diagnostics": [
                {
                    "message": "mismatched types",
                    "level": "error",
                    "spans": [{}],
                    "rendered": "error[E0308]\n",
                },
                {
                    "message": "aborting due to 1 previous error",
                    "level": "error",
                    "spans": [],
                    "rendered": "x\n",
                },
            ],
            "ms": 10,
        }
    )
    err = capsys.readouterr().err
    assert "[hotline] compile error (1 error): the app keeps running its last good code" in err, err


SOURCE = """\
use std::sync::Mutex;

pub struct Player {
    hp: u32,
}

static PLAYERS: Mutex<Vec<Player>> = Mutex::new(Vec::new());

pub fn step(player: &mut Player, by: u32) -> u32 {
    player.hp + by
}
"""


@pytest.mark.parametrize(
    ("rule", "symbol", "needle", "covered"),
    [
        ("HL1002", "probe::Player", "struct Player", "Player"),
        ("HL1004", "_ZN5probe7PLAYERS17h0123456789abcdefE", "static PLAYERS", "PLAYERS"),
        ("HL1004", None, "static PLAYERS", "PLAYERS"),
        ("HL1001", "probe::step", "pub fn step", "pub fn step(player: &mut Player, by: u32) -> u32"),
    ],
)
def test_rude_edit_diagnostics_underline_the_item(tmp_path: Path, rule, symbol, needle, covered):
    """Bug 5: the range covers the type's name, the static's name or the function's signature
    (it was line:0-line:0); bug 6: an error's text says a restart is required."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "main.rs").write_text(SOURCE)
    line = line_of(SOURCE, needle) + 1
    edit = {
        "rule": rule,
        "severity": "error",
        "message": "struct Player: size 4 → 8",
        "file": "src/main.rs",
        "line": line,
    }
    if symbol:
        edit["symbol"] = symbol
    ((uri, (diag,)),) = group_by_uri([rude_edit_diagnostic(edit, tmp_path)], tmp_path).items()
    text = SOURCE.splitlines()[line - 1]
    start = text.index(covered)
    assert diag.range == types.Range(
        start=types.Position(line=line - 1, character=start),
        end=types.Position(line=line - 1, character=start + len(covered)),
    )
    assert diag.message == "struct Player: size 4 → 8: restart required"
    assert diag.code == rule and diag.source == "hotline"


def test_lens_vocabulary_is_one_and_documented():
    """Bug 6: one vocabulary for every lens, each with a tooltip, shown in the docs exactly."""
    from hotline import REPO_ROOT
    from hotline.lsp import code_lens, settings
    from hotline.lsp.core import HotlineLanguageServer
    from pygls.workspace import Workspace

    ls = HotlineLanguageServer()
    crate = REPO_ROOT / "examples" / "counter"
    ls.protocol._workspace = Workspace(crate.as_uri())
    assert settings.configure(ls, {}, str(crate)) == []
    main_rs = crate / "src" / "main.rs"
    source = main_rs.read_text()
    ls.last_refused = {
        "event": "patch-refused",
        "rule": "HL1002",
        "reason": "struct World: size 32 → 40: restart required",
        "rude_edits": [
            {
                "rule": "HL1002",
                "severity": "error",
                "message": "struct World: size 32 → 40",
                "file": "src/main.rs",
                "line": line_of(source, "struct World") + 1,
            },
            {
                "rule": "HL1004",
                "severity": "error",
                "message": "static TICKS changed type",
                "file": "src/main.rs",
                "line": line_of(source, "static TICKS") + 1,
            },
        ],
    }
    found = {lens.command.title: lens.command for lens in code_lens.code_lenses(ls, main_rs.as_uri())}
    assert set(found) == {
        "⚠ restart required (HL1002): layout change",
        "⚠ restart required (HL1004): static type changed",
        "▶ Run with Hotline",
    }, found
    assert all(c.tooltip for c in found.values())
    assert found["⚠ restart required (HL1002): layout change"].tooltip == (
        "Click to restart the app (full rebuild): struct World: size 32 → 40"
    )
    ls.last_refused = {
        "event": "patch-refused",
        "rule": "HL1098",
        "reason": "the patch region is full: restart the app",
    }
    ls.last_saved_uri = main_rs.as_uri()
    (refused,) = [
        lens.command
        for lens in code_lens.code_lenses(ls, main_rs.as_uri())
        if lens.command.title.startswith("⚠")
    ]
    assert refused.title == "⚠ patch refused (HL1098): the patch region is full: restart the app"
    assert refused.tooltip.startswith("The app keeps running its last good code. Click to show the details")

    docs = {
        p: (REPO_ROOT / p).read_text()
        for p in ("README.md", "vscode-extension/README.md", "nvim/doc/hotline.txt")
    }
    shown = [
        "▶ Run with Hotline",
        "⟳ Full rebuild",
        "patched in 142ms",
        "⚠ restart required (HL1002): layout change",
        "⚠ patch refused (HL1098): the patch region is full: restart the app",
        "⚠ still running old code on thread worker-1 (HL1012)",
        "Click to restart the app and run the new code",
        "· ran",
        "· not called since the patch",
        vocabulary.RUN_TOOLTIP,
        vocabulary.REBUILD_TOOLTIP,
        vocabulary.PATCHED_TOOLTIP,
        "Click to restart the app (full rebuild)",
    ]
    for path, text in docs.items():
        if path != "README.md":
            for words in shown:
                assert words in text, (path, words)
        for stale in ("layout change: restart required", "HL1004: restart required", "patch refused (rule)"):
            assert stale not in text, (path, stale)
    assert vocabulary.patched_title(142.4) == "patched in 142ms"
    assert vocabulary.patched_title(142.4, ["ran"]) == "patched in 142ms · ran"  # receipts (HL1013)
    assert vocabulary.patched_title(142.4, ["ran", ""]) == "patched in 142ms"
    assert (
        vocabulary.patched_title(142.4, ["ran", "not-run"]) == "patched in 142ms · not called since the patch"
    )
    frame = {"function": "app::worker", "thread": "worker-1", "tid": 7}
    assert vocabulary.live_frame_title(frame) == "⚠ still running old code on thread worker-1 (HL1012)"
    assert vocabulary.LIVE_FRAME_TOOLTIP.format(**frame).endswith(
        "Click to restart the app and run the new code"
    )


def test_lenses_of_the_last_patch_are_where_the_functions_are_now(tmp_path: Path):
    """Bug 1: a function the debug info did not place (missing from `locations`) still gets
    its lens, found by name in the saved text. Bug 3: after lines are inserted above, each
    lens is on its function's current line; a deleted function loses its lens."""
    from hotline.lsp import code_lens, settings
    from hotline.lsp.core import HotlineLanguageServer
    from pygls.workspace import Workspace

    crate = tmp_path / "methods"
    (crate / "src").mkdir(parents=True)
    (crate / "Cargo.toml").write_text('[package]\nname = "methods"\nversion = "0.1.0"\n')
    main_rs = crate / "src" / "main.rs"
    main_rs.write_text(MAIN_RS)
    ls = HotlineLanguageServer()
    ls.protocol._workspace = Workspace(crate.as_uri())
    assert settings.configure(ls, {}, str(crate)) == []
    uri = main_rs.as_uri()
    ls.workspace.put_text_document(
        types.TextDocumentItem(uri=uri, language_id="rust", version=1, text=MAIN_RS)
    )
    ls.last_saved_uri = uri
    event = {
        "event": "patched",
        "seq": 1,
        "ms": 80.0,
        "functions": ["methods::Counter::label", "methods::tick"],
        "added": [],
        # the debug info placed `tick` only
        "locations": [
            {
                "symbol": "t",
                "function": "methods::tick",
                "file": str(main_rs),
                "line": line_of(MAIN_RS, "fn tick") + 1,
            }
        ],
    }
    ls.last_patch = event
    ls.patched_sources = {main_rs.resolve(): MAIN_RS}  # what _patch_outcome keeps: the saved text

    def patched_at():
        return sorted(
            lens.range.start.line
            for lens in code_lens.code_lenses(ls, uri)
            if lens.command.title.startswith("patched in")
        )

    assert patched_at() == [line_of(MAIN_RS, "fn label"), line_of(MAIN_RS, "fn tick")]
    inserted = MAIN_RS.replace("struct Counter {", "// one\n// two\n// three\nstruct Counter {")
    ls.workspace.put_text_document(
        types.TextDocumentItem(uri=uri, language_id="rust", version=2, text=inserted)
    )
    assert patched_at() == [line_of(inserted, "fn label"), line_of(inserted, "fn tick")]
    without_tick = inserted[: inserted.index("fn tick")] + inserted[inserted.index("fn main") :]
    ls.workspace.put_text_document(
        types.TextDocumentItem(uri=uri, language_id="rust", version=3, text=without_tick)
    )
    assert patched_at() == [line_of(without_tick, "fn label")]


def test_follow_lines_and_relocate():
    before = "fn a() {}\n\nimpl S {\n    fn m(&self) {}\n}\n"
    after = "// new\n" + before
    assert vocabulary.relocate(before, after, {3: ["app::S::m"]}) == {4: ["app::S::m"]}
    # the signature itself was edited: found again by name
    edited = after.replace("fn m(&self) {}", "fn m(&self) -> u32 { 1 }")
    assert vocabulary.relocate(before, edited, {3: ["app::S::m"]}) == {4: ["app::S::m"]}
    # the function is gone: no lens
    assert vocabulary.relocate(before, "fn a() {}\n", {3: ["app::S::m"]}) == {}
