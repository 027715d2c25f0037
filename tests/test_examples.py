"""The bundled examples, patched live: the HTTP server and `hotline run` on the counter."""

from __future__ import annotations

import socket

from conftest import copy_app, fields


def _get(conn: socket.socket, path: str) -> str:
    conn.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(4096)
    head, body = data.split(b"\r\n\r\n", 1)
    length = int(
        next(h.split(b":")[1] for h in head.split(b"\r\n") if h.lower().startswith(b"content-length"))
    )
    while len(body) < length:
        body += conn.recv(4096)
    return body.decode()


def test_http_handler_is_patched_while_connections_stay_open(live_app):
    app = live_app("http", ["127.0.0.1:0"])
    line = app.wait_line(lambda s: s.startswith("listening on"))
    host, port = line.rsplit("/", 1)[1].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        assert _get(conn, "/a") == "hello from /a\n"
        app.edit('format!("hello from {path}\\n")', 'format!("patched handler for {path}\\n")')
        app.patch()
        assert _get(conn, "/b") == "patched handler for /b\n"  # same open connection
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        assert _get(conn, "/c") == "patched handler for /c\n"  # same listener


def test_hotline_run_patches_on_save_and_reports_compile_errors(tmp_path, hotline_run):
    crate = copy_app("counter", tmp_path)
    run = hotline_run(crate)
    until, events = run.until, run.events
    until(lambda e: e["event"] == "app-output" and e["line"].startswith("hello"))
    run.watching()
    main = crate / "src" / "main.rs"
    main.write_text(main.read_text().replace('"hello"', '"salut"'))
    patched = until(lambda e: e["event"] in ("patched", "patch-refused", "compile-error"))
    assert patched["event"] == "patched" and patched["functions"] == ["counter::greeting"]
    until(lambda e: e["event"] == "app-output" and e["line"].startswith("salut"))
    main.write_text(main.read_text().replace('"salut"', "42"))
    error = until(lambda e: e["event"] == "compile-error")
    assert any(d.get("code") and d["code"]["code"] == "E0308" for d in error["diagnostics"])
    until(lambda e: e["event"] == "app-output" and e["line"].startswith("salut"))  # still running
    counts = [
        int(fields(e["line"])["ticks"])
        for e in events
        if e["event"] == "app-output" and "ticks=" in e["line"]
    ]
    assert counts == sorted(counts)  # one process all along: the static counter never restarted
    kinds = [e["event"] for e in events]
    assert kinds.index("build-started") < kinds.index("build-finished") < kinds.index("app-started")
