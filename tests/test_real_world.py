"""Apps with real crates.io dependencies (issue 7): axum/tokio servers patched live, one of
them with the 105-crate dependency graph of a production service, and a ratatui terminal UI.
The servers' handlers are plain async fns (no `hotline::call`): entry jumps bring an edit to
the Router built at start-up, on connections that stay open.

The fat build of tokio + axum takes minutes on two cores, so its target directory is
cached outside the clone (~/.cache/hotline-tests) and reused by later runs.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hotline.examples import copy_app

CACHE = Path.home() / ".cache" / "hotline-tests"


class KeepAlive:
    """One HTTP/1.1 keep-alive connection that must stay the same TCP connection throughout:
    http.client would silently reconnect after the server closed it, so every request
    checks the socket object and its local port, and that the server did not ask to close."""

    def __init__(self, host: str, port: int) -> None:
        self.conn = http.client.HTTPConnection(host, port, timeout=10)
        self.sock: socket.socket | None = None
        self.local_port = 0

    def get(self, path: str) -> tuple[int, str]:
        self.conn.request("GET", path)
        response = self.conn.getresponse()
        body = response.read().decode()
        assert not response.will_close, response.getheaders()  # the server keeps it open
        sock = self.conn.sock
        assert sock is not None
        if self.sock is None:
            self.sock, self.local_port = sock, sock.getsockname()[1]
        assert sock is self.sock and sock.getsockname()[1] == self.local_port  # the same connection
        return response.status, body

    def close(self) -> None:
        self.conn.close()


def listening(app) -> tuple[str, int]:
    line = app.wait_line(lambda s: s.startswith("listening on"), timeout=600)  # cold cache: minutes
    host, port = line.rsplit("/", 1)[1].split(":")
    return host, int(port)


def no_safe_point_in(crate: Path) -> None:
    assert not [f for f in crate.rglob("*.rs") if "hotline::call" in f.read_text()]


def without_runtime_dependency(crate: Path) -> None:
    """The app as a user has it before Hotline: no runtime crate in its manifest."""
    manifest = crate / "Cargo.toml"
    text = manifest.read_text()
    manifest.write_text(re.sub(r"(?m)^hotline = .*\n", "", text))
    assert "hotline" not in manifest.read_text()


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["linked", "injected"])
def test_axum_router_built_at_start_up_serves_the_edited_handler_on_the_same_keep_alive_connection(
    live_app, monkeypatch, runtime
):
    monkeypatch.setenv("HOTLINE_TARGET_DIR", str(CACHE / "axum-server"))
    prepare = without_runtime_dependency if runtime == "injected" else None
    app = live_app("axum-server", ["127.0.0.1:0"], prepare=prepare)
    (started,) = [e for e in app.events if e["event"] == "app-started"]
    assert started["runtime"] == runtime
    no_safe_point_in(app.crate)
    conn = KeepAlive(*listening(app))
    try:
        assert conn.get("/hello/bob") == (200, "hello, bob\n")
        # A new body that calls dependency code the original binary never called.
        app.edit(
            'format!("hello, {name}\\n")',
            'format!("hi {} from {} workers\\n", name.to_uppercase(), tokio::runtime::Handle::current().metrics().num_workers())',
        )
        event = app.patch()
        assert "axum_server::greet" in event["functions"]
        status, body = conn.get("/hello/bob")
        assert status == 200 and body.startswith("hi BOB from ") and body.endswith(" workers\n")
        assert conn.get("/health") == (200, "ok\n")
        app.edit('    "ok\\n"\n', '    "healthy\\n"\n')
        app.patch()
        assert conn.get("/health") == (200, "healthy\n")
    finally:
        conn.close()


@pytest.mark.slow
def test_web_service_with_105_crates_serves_the_edited_handler_on_the_same_keep_alive_connection(
    live_app, monkeypatch
):
    monkeypatch.setenv("HOTLINE_TARGET_DIR", str(CACHE / "web-service"))
    app = live_app("web-service", ["127.0.0.1:0"])
    no_safe_point_in(app.crate)
    conn = KeepAlive(*listening(app))

    def greeting(name: str) -> dict:
        status, body = conn.get(f"/hello/{name}")
        assert status == 200, body
        return json.loads(body)

    try:
        first = greeting("ann")
        assert first["message"] == "hello, ann\n" and first["visits"] == 1
        app.edit('format!("hello, {name}\\n")', 'format!("good day, {name}!\\n")')
        event = app.patch()
        assert "web_service::greet" in event["functions"]
        assert event["units"]["linked"] <= 5 < 200 < event["units"]["total"]
        second = greeting("ann")  # the same connection, the same static counter
        assert second["message"] == "good day, ann!\n" and second["visits"] == 2
    finally:
        conn.close()


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True).stdout


@pytest.mark.slow
def test_terminal_ui_draw_function_is_patched_in_a_real_terminal(tmp_path):
    """The title changes in the same process: its tick count (state drawn by the new code) never
    goes back across the patch, and the app keeps its pid; a relaunch would restart at 1."""
    crate = copy_app("tui", tmp_path)
    session = f"hotline-tui-{os.getpid()}"
    env = f"HOTLINE_TARGET_DIR={CACHE / 'tui'}"
    command = f"env {env} {sys.executable} -m hotline run {crate}"
    _tmux("new-session", "-d", "-s", session, "-x", "80", "-y", "20", command)
    engine = int(_tmux("display-message", "-p", "-t", session, "#{pane_pid}"))  # env execs python
    ticks_seen: list[int] = []

    def screen_shows(pattern: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = _tmux("capture-pane", "-p", "-t", session)
            ticks_seen.extend(int(t) for t in re.findall(r"ticks: (\d+)", screen))
            if re.search(pattern, screen):
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{pattern!r} not on screen:\n{screen}")

    def app_pids() -> list[int]:
        """The engine's children: the app (the engine keeps no other child process while it runs)."""
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == engine and "tui" in stat.read_text().split(")")[0]:
                pids.append(int(stat.parent.name))
        return pids

    def app_started(timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while not app_pids():
            assert time.monotonic() < deadline, "the app did not start:\n" + _tmux(
                "capture-pane", "-p", "-t", session
            )
            time.sleep(0.2)
        (pid,) = app_pids()
        return pid

    try:
        app = app_started(600)  # the fat build of ratatui may take minutes on a cold cache
        # Hotline's lines came before the app's first frame: none scrolled its top row away.
        screen_shows("┌hotline", 30)
        screen_shows(r"ticks: ([5-9]|\d\d+)\b", 10)  # about 10 frames a second: state to keep
        before = ticks_seen[-1]
        main = crate / "src" / "main.rs"
        main.write_text(main.read_text().replace('.title("hotline")', '.title("patched live")'))
        screen = screen_shows("┌patched.live", 60)
        after = int(re.search(r"ticks: (\d+)", screen)[1])
        assert after > before, (before, after)  # the state drawn by the new code is the old state
        assert ticks_seen == sorted(ticks_seen), ticks_seen  # the count never went back
        assert app_pids() == [app]  # the same process: no relaunch
        os.kill(app, 0)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


@pytest.mark.slow
def test_terminal_ui_without_the_runtime_dependency_is_patched_with_its_state(live_app, monkeypatch):
    """The ratatui app with no runtime crate and no `hotline::call`: the runtime is preloaded,
    and the edited draw function draws the next frame with the frame count carried on."""

    def plain(crate: Path) -> None:
        without_runtime_dependency(crate)
        main = crate / "src" / "main.rs"
        main.write_text(main.read_text().replace("hotline::call(|| draw(f, &state))", "draw(f, &state)"))

    monkeypatch.setenv("HOTLINE_TARGET_DIR", str(CACHE / "tui"))
    app = live_app("tui", prepare=plain)  # no terminal: it prints each frame as one line
    (started,) = [e for e in app.events if e["event"] == "app-started"]
    assert started["runtime"] == "injected"
    code = [line for line in (app.crate / "src" / "main.rs").read_text().splitlines() if "//" not in line]
    assert not [line for line in code if "hotline::" in line]  # the source never names the runtime
    before = int(re.search(r"ticks: (\d+)", app.wait_line(lambda s: "┌hotline" in s, timeout=60))[1])
    app.edit('.title("hotline")', '.title("patched")')
    app.patch()
    mark = app.mark()
    line = app.wait_line(lambda s: "ticks:" in s, after=mark)
    assert "┌patched" in line, line  # the first frame after the patch is drawn by the new code
    assert int(re.search(r"ticks: (\d+)", line)[1]) > before  # with the state it had
    assert not app.exits()
