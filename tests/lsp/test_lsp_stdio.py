"""The language server reads stdin on its event loop when it is a pipe (every editor), and
with pygls's threaded reader otherwise (stdin redirected from a file)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from hotline.lsp.stdio import PipeReader, pipe_reader


def frame(message: dict) -> bytes:
    body = json.dumps({"jsonrpc": "2.0", **message}).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def test_a_pipe_is_read_on_the_loop_message_by_message_until_its_end() -> None:
    read_end, write_end = os.pipe()
    os.write(write_end, frame({"method": "initialized", "params": {}}) + b"Content-Length: 40\r\n\r\n{")
    os.close(write_end)

    async def read_all() -> list[bytes]:
        with open(read_end, "rb", buffering=0) as stdin:
            reader = await pipe_reader(stdin)
            assert isinstance(reader, PipeReader)
            return [
                await reader.readline(),
                await reader.readline(),
                await reader.readexactly(
                    len(frame({"method": "initialized", "params": {}}).split(b"\r\n\r\n")[1])
                ),
                await reader.readline(),
                await reader.readline(),
                await reader.readexactly(40),  # the writer closed after one byte of it
            ]

    header, blank, body, header2, blank2, cut = asyncio.run(read_all())
    assert header.startswith(b"Content-Length: ") and blank == b"\r\n"
    assert json.loads(body)["method"] == "initialized"
    assert (header2, blank2, cut) == (b"Content-Length: 40\r\n", b"\r\n", b"")


def test_a_server_whose_stdin_is_a_file_answers_with_the_threaded_reader(tmp_path: Path) -> None:
    requests = tmp_path / "requests"
    requests.write_bytes(
        frame(
            {
                "id": 1,
                "method": "initialize",
                "params": {"processId": None, "rootUri": None, "capabilities": {}},
            }
        )
        + frame({"id": 2, "method": "shutdown"})
        + frame({"method": "exit"})
    )
    with requests.open("rb") as stdin:
        done = subprocess.run(
            [sys.executable, "-m", "hotline.lsp"], stdin=stdin, capture_output=True, timeout=60
        )
    assert done.returncode == 0, done.stderr  # exit after shutdown
    answers = {m["id"]: m for m in unframe(done.stdout) if "id" in m}
    assert answers[1]["result"]["serverInfo"]["name"] == "hotline"
    assert answers[2]["result"] is None
    assert b"Traceback" not in done.stderr


def unframe(data: bytes) -> list[dict]:
    out = []
    while data:
        header, _, rest = data.partition(b"\r\n\r\n")
        fields = dict(line.split(b": ", 1) for line in header.split(b"\r\n"))
        length = int(fields[b"Content-Length"])
        out.append(json.loads(rest[:length]))
        data = rest[length:]
    return out
