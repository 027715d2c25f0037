"""Patching an app that does not depend on the runtime (issue 17): the engine preloads the
runtime library it builds once per toolchain (`preload.py`), and an app that does link the
runtime gets exactly that one. Live: real cargo, rustc, processes."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import pytest_lsp
from hotline import RUNTIME_DIR
from hotline.engine.app.preload import LIBRARY, PreloadError, preload_library
from hotline.examples import copy_app
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

TICK = re.compile(r"tick=(\d+) greeting=(.*)")


@pytest.fixture(scope="session", autouse=True)
def runtime_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One cache of the preloaded library for every test here: built once, reused after."""
    cache = tmp_path_factory.mktemp("hotline-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOTLINE_CACHE_DIR", str(cache))
        events: list[dict] = []
        library = preload_library(events.append)
        assert [e["event"] for e in events] == ["runtime-build-started", "runtime-build-finished"]
        assert preload_library(events.append) == library and len(events) == 2  # built once, reused
        yield library


def _ticks(app, count: int, after: int, greeting: str | None = None) -> list[int]:
    lines = app.wait_lines(
        lambda s: (m := TICK.match(s)) is not None and (greeting is None or m[2] == greeting),
        count,
        after=after,
    )
    return [int(TICK.match(line)[1]) for line in lines]  # type: ignore[index]


def _child(app) -> list[str]:
    app.wait_line(lambda s: s == "child done")
    return [s.removeprefix("child: ") for s in app.lines if s.startswith("child: ")]


def _assert_child_is_clean(child: list[str]) -> None:
    # What the engine added for the app (the test run's own HOTLINE_* settings pass through).
    inherited = {f"{k}={v}" for k, v in os.environ.items()}
    leaked = [s for s in child if s.startswith(("HOTLINE_", "LD_PRELOAD=")) and s not in inherited]
    assert not leaked, leaked
    assert "mapped=0" in child, child  # the runtime library is not loaded in the child


def _maps(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


def _one_connection(app) -> None:
    channel = app.session.running.channel
    time.sleep(0.5)  # a second runtime would have connected by now
    assert channel.accepted == 1 and not channel.pending()


def test_an_app_without_the_runtime_is_injected_and_patched_with_its_state(live_app, runtime_cache):
    app = live_app("plain")
    (started,) = [e for e in app.events if e["event"] == "app-started"]
    assert started["runtime"] == "injected", started
    assert not [e for e in app.events if e["event"].startswith("runtime-build")]  # cached
    assert str(runtime_cache) in _maps(started["pid"])
    _assert_child_is_clean(_child(app))
    before = _ticks(app, 3, app.mark(), "hello")
    mark = app.mark()
    app.edit('"hello".to_string()', '"howdy".to_string()')
    patched = app.patch()
    assert patched["functions"] == ["plain::greeting"] and patched["entry_jumps"]["written"] == 1, patched
    after = _ticks(app, 2, mark, "howdy")
    assert after[0] > before[-1]  # the static kept counting: the same process, patched
    _one_connection(app)
    # std's backtrace names the patched frame with its source line: the preloaded runtime's
    # dl_iterate_phdr reports the patch's debug info.
    mark = app.mark()
    app.edit(
        '"howdy".to_string()',
        "std::backtrace::Backtrace::force_capture().to_string().lines()"
        '.skip_while(|l| !l.contains("plain::greeting")).nth(1).unwrap_or("?").trim().replace(" ", "_")',
    )
    app.patch()
    traced = app.wait_line(lambda s: "src/main.rs:" in s, timeout=20, after=mark)
    assert TICK.match(traced), traced
    assert not app.exits()


def test_an_app_that_links_the_runtime_is_linked_and_connects_once(live_app, runtime_cache):
    def depend_on_the_runtime(crate: Path) -> None:
        manifest = crate / "Cargo.toml"
        text = manifest.read_text().replace(
            "[dependencies]\n",
            f'[dependencies]\nhotline = {{ package = "hotline-runtime", path = "{RUNTIME_DIR}" }}\n',
        )
        manifest.write_text(text)

    app = live_app("plain", prepare=depend_on_the_runtime)
    (started,) = [e for e in app.events if e["event"] == "app-started"]
    assert started["runtime"] == "linked", started
    assert LIBRARY not in _maps(started["pid"])  # nothing preloaded
    _assert_child_is_clean(_child(app))
    mark = app.mark()
    app.edit('"hello".to_string()', '"howdy".to_string()')
    app.patch()
    _ticks(app, 2, mark, "howdy")
    _one_connection(app)


def test_a_workspace_library_edit_is_patched_into_an_app_without_the_runtime(live_app):
    def drop_the_runtime(crate: Path) -> None:
        manifest = crate / "Cargo.toml"
        manifest.write_text(re.sub(r"(?m)^hotline = .*\n", "", manifest.read_text()))
        main = crate / "src" / "main.rs"
        text = main.read_text()
        assert "hotline::call(|| println!(" in text
        main.write_text(text.replace("hotline::call(|| println!(", "println!(").replace("!()));", "!());"))

    app = live_app("workspace", member="app", prepare=drop_the_runtime)
    assert [e["runtime"] for e in app.events if e["event"] == "app-started"] == ["injected"]
    line = re.compile(r"lib-(v\d) calls=(\d+) tls=(\d+) wrapped=\[7\]")
    before = app.wait_lines(lambda s: bool(line.match(s)), 3)
    mark = app.mark()
    app.edit('"lib-v1 calls=', '"lib-v2 calls=', "../engine/src/lib.rs")
    assert "engine" in app.patch()["crates"]
    (after,) = app.wait_lines(lambda s: s.startswith("lib-v2"), 1, after=mark)
    old, new = line.match(before[-1]), line.match(after)
    assert old and new, (before, after)
    # The library's static and the main thread's thread-local kept counting.
    assert int(new[2]) > int(old[2]) and int(new[3]) > int(old[3]), (before[-1], after)


def test_a_static_executable_cannot_be_injected_and_the_error_says_what_to_do(live_app):
    from hotline.engine.errors import HotlineError

    def link_statically(crate: Path) -> None:
        (crate / ".cargo").mkdir()
        (crate / ".cargo" / "config.toml").write_text(
            '[build]\nrustflags = ["-C", "target-feature=+crt-static"]\n'
        )

    with pytest.raises(HotlineError, match="statically linked.*depend on the runtime crate"):
        live_app("plain", prepare=link_statically)


def test_hotline_run_says_the_runtime_is_injected(tmp_path, hotline_run):
    run = hotline_run(copy_app("plain", tmp_path), json_events=False)
    line = run.until_stderr(lambda s: "app started" in s)
    assert "runtime injected" in line and "no hotline::call safe points" in line, line


def test_a_failed_runtime_build_says_why_and_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("HOTLINE_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("RUSTFLAGS", "-C no-such-option=1")
    events: list[dict] = []
    with pytest.raises(PreloadError, match="building the injected runtime") as failed:
        preload_library(events.append)
    assert "depend on the runtime crate" in str(failed.value)
    assert events[-1] == {"event": "runtime-build-finished", "ok": False, "ms": events[-1]["ms"]}
    assert not list(tmp_path.glob(f"*/{LIBRARY}"))


@pytest_lsp.fixture(config=ClientServerConfig(server_command=[sys.executable, "-m", "hotline.lsp"]))
async def lsp(lsp_client: LanguageClient):
    lsp_client.statuses = []  # type: ignore[attr-defined]

    @lsp_client.feature("hotline/status")
    def on_status(params):
        plain = params if isinstance(params, dict) else params._asdict()  # an object_hook namedtuple
        lsp_client.statuses.append(plain)  # type: ignore[attr-defined]

    yield
    await asyncio.wait_for(lsp_client.shutdown_session(), 15)


async def test_the_language_server_status_says_the_runtime_is_injected(lsp: LanguageClient, tmp_path):
    crate = copy_app("plain", tmp_path)
    params = types.InitializeParams(capabilities=client_capabilities("neovim"), root_uri=crate.as_uri())
    await asyncio.wait_for(lsp.initialize_session(params), 15)
    command = types.ExecuteCommandParams(command="hotline.run")
    result = await asyncio.wait_for(lsp.workspace_execute_command_async(command), 120)
    assert (result["ok"] if isinstance(result, dict) else result.ok) is True, result
    deadline = time.monotonic() + 10
    while not [s for s in lsp.statuses if s["state"] == "running"] and time.monotonic() < deadline:  # type: ignore[attr-defined]
        await asyncio.sleep(0.05)
    running = [s for s in lsp.statuses if s["state"] == "running"]  # type: ignore[attr-defined]
    assert running and running[-1]["runtime"] == "injected", lsp.statuses  # type: ignore[attr-defined]
    assert all("runtime" not in s for s in lsp.statuses if s["state"] == "building")  # type: ignore[attr-defined]
