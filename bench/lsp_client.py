"""A minimal LSP client over stdio for the benchmarks: it drives `hotline lsp` as an editor
does and timestamps each notification the server sends as it arrives.

Requests from the server (progress tokens, lens refreshes, questions) are answered with
null, as an editor that shows nothing would.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


class LspClient:
    def __init__(self, cwd: Path, env: dict[str, str], stderr: IO[bytes]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hotline.lsp"],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
        self.notifications: list[tuple[float, str, Any]] = []  # (perf_counter, method, params)
        self._responses: dict[int, dict] = {}
        self._next_id = 0
        self._cond = threading.Condition()
        self._write_lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    # -- wire ----------------------------------------------------------------------------
    def _send(self, message: dict) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        assert self.proc.stdin is not None
        with self._write_lock:
            self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
            self.proc.stdin.flush()

    def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            length = None
            while True:
                line = out.readline()
                if not line:
                    with self._cond:
                        self._cond.notify_all()
                    return
                if line in (b"\r\n", b"\n"):
                    break
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            if length is None:
                continue
            message = json.loads(out.read(length))
            arrived = time.perf_counter()
            if "method" in message and "id" in message:  # a request from the server
                self._send({"id": message["id"], "result": None})
            elif "method" in message:
                with self._cond:
                    self.notifications.append((arrived, message["method"], message.get("params")))
                    self._cond.notify_all()
            else:
                with self._cond:
                    self._responses[message["id"]] = message
                    self._cond.notify_all()

    # -- calls ---------------------------------------------------------------------------
    def request(self, method: str, params: Any, timeout: float) -> Any:
        with self._cond:
            self._next_id += 1
            rid = self._next_id
        self._send({"id": rid, "method": method, "params": params})
        with self._cond:
            if not self._cond.wait_for(
                lambda: rid in self._responses or self.proc.poll() is not None, timeout
            ):
                raise SystemExit(f"bench: no answer to {method} in {timeout:.0f} s")
            if rid not in self._responses:
                raise SystemExit(f"bench: the language server exited during {method}")
            answer = self._responses.pop(rid)
        if "error" in answer:
            raise SystemExit(f"bench: {method} failed: {answer['error']}")
        return answer.get("result")

    def notify(self, method: str, params: Any) -> None:
        self._send({"method": method, "params": params})

    def wait(self, since: int, match: Callable[[str, Any], bool], timeout: float) -> tuple[float, str, Any]:
        """The first notification at index >= `since` that `match(method, params)` accepts."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for note in self.notifications[since:]:
                    if match(note[1], note[2]):
                        return note
                since = len(self.notifications)
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise SystemExit(
                        f"bench: the language server did not send what was awaited in {timeout:.0f} s"
                    )
                self._cond.wait(left)

    def mark(self) -> int:
        with self._cond:
            return len(self.notifications)

    def close(self) -> None:
        try:
            self.request("shutdown", None, 30)
            self.notify("exit", None)
            self.proc.wait(timeout=30)
        except (SystemExit, OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
