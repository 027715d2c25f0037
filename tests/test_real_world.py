"""Apps with real crates.io dependencies (issue 7): an axum/tokio server patched live.

The fat build of tokio + axum takes minutes on two cores, so its target directory is
cached outside the clone (~/.cache/hotline-tests) and reused by later runs.
"""

from __future__ import annotations

import http.client
from pathlib import Path

import pytest

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
