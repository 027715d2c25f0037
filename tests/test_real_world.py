"""Apps with real crates.io dependencies (issue 7): axum/tokio servers patched live, one of
them with the 105-crate dependency graph of a production service, and a ratatui terminal UI.

The fat build of tokio + axum takes minutes on two cores, so its target directory is
cached outside the clone (~/.cache/hotline-tests) and reused by later runs.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hotline.examples import copy_app

CACHE = Path.home() / ".cache" / "hotline-tests"


@pytest.mark.slow
def test_axum_handler_is_patched_while_the_server_keeps_its_connections(live_app, monkeypatch):
    monkeypatch.setenv("HOTLINE_TARGET_DIR", str(CACHE / "axum-server"))
    app = live_app("axum-server", ["127.0.0.1:0"])
    line = app.wait_line(lambda s: s.startswith("listening on"), timeout=60)
    host, port = line.rsplit("/", 1)[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)

    def get(path: str) -> str:
        conn.request("GET", path)
        return conn.getresponse().read().decode()

    assert get("/hello/bob") == "hello, bob\n"
    # A new body that calls dependency code the original binary never called.
    app.edit(
        'format!("hello, {name}\\n")',
        'format!("hi {} from {} workers\\n", name.to_uppercase(), tokio::runtime::Handle::current().metrics().num_workers())',
    )
    event = app.patch()
    assert "axum_server::greet" in event["functions"]
    assert get("/hello/bob").startswith("hi BOB from ")  # same keep-alive connection
    assert get("/health") == "ok\n"
    app.edit('hotline::call(|| "ok\\n")', 'hotline::call(|| "healthy\\n")')
    app.patch()
    assert get("/health") == "healthy\n"


@pytest.mark.slow
def test_web_service_with_105_crates_patches_a_handler_through_three_units(live_app, monkeypatch):
    monkeypatch.setenv("HOTLINE_TARGET_DIR", str(CACHE / "web-service"))
    app = live_app("web-service", ["127.0.0.1:0"])
    line = app.wait_line(lambda s: s.startswith("listening on"), timeout=600)  # cold: minutes
    host, port = line.rsplit("/", 1)[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)

    def greeting(name: str) -> dict:
        conn.request("GET", f"/hello/{name}")
        response = conn.getresponse()
        return json.loads(response.read())

    first = greeting("ann")
    assert first["message"] == "hello, ann\n" and first["visits"] == 1
    app.edit('format!("hello, {name}\\n")', 'format!("good day, {name}!\\n")')
    event = app.patch()
    assert event["functions"] == ["web_service::greet"]
    assert event["units"]["linked"] <= 5 < 200 < event["units"]["total"]
    second = greeting("ann")  # same connection, same static counter
    assert second["message"] == "good day, ann!\n" and second["visits"] == 2


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True).stdout


@pytest.mark.slow
def test_terminal_ui_draw_function_is_patched_in_a_real_terminal(tmp_path):
    crate = copy_app("tui", tmp_path)
    session = f"hotline-tui-{os.getpid()}"
    env = f"HOTLINE_TARGET_DIR={CACHE / 'tui'}"
    command = f"env {env} {sys.executable} -m hotline run {crate}"
    _tmux("new-session", "-d", "-s", session, "-x", "80", "-y", "20", command)
    try:

        def screen_shows(text: str, timeout: float) -> str:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                screen = _tmux("capture-pane", "-p", "-t", session)
                if text in screen:
                    return screen
                time.sleep(0.2)
            raise AssertionError(f"{text!r} not on screen:\n{screen}")

        screen_shows("┌hotline", 600)  # the fat build of ratatui may take minutes on a cold cache
        time.sleep(1.5)  # let the watcher take its first look
        main = crate / "src" / "main.rs"
        main.write_text(main.read_text().replace('.title("hotline")', '.title("patched live")'))
        screen = screen_shows("┌patched live", 60)
        assert "ticks:" in screen  # the same app, its state drawn by the new code
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
