"""The engine's end of the patch channel: a private Unix socket per launched app.

The socket lives in a fresh 0700 directory with mode 0600, and every message carries
a per-launch random token, so only this engine and the app it launched can talk.

A patch with entry jumps is applied under the quiet stop when ptrace is available
(`thread_stop.py`): the runtime maps it and says `jumps-ready`, the helper holds the app's
threads and writes the jumps, the runtime serializes the cores (`sync-core`), the helper
releases them, and `jumps-written` tells the runtime what was written
(runtime/src/quiet_stop.rs has the runtime's side). In that stop the helper also finds the
old copies (`frames`) that still have a frame on some thread (`live_frames`).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import select
import socket
import stat
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hotline.engine.app.thread_stop import QuietStop
from hotline.engine.schemas import problems


class ChannelError(Exception):
    """The app did not connect, answered wrongly, or went away."""


@dataclass
class Hello:
    pid: int
    mode: str  # "linked" (the app depends on the runtime crate) or "injected" (preloaded)
    anchor: int | None  # runtime address of hotline_aslr_anchor, when linked
    exe_base: int | None  # the executable's load bias from the auxiliary vector, when found
    region_start: int
    region_size: int
    last_seq: int  # the newest patch the runtime accepted

    def slide(self, anchor_link_address: int | None) -> int:
        """Runtime minus link-time address of the executable: from the anchor when the runtime
        is linked in, from the load bias the preloaded runtime found otherwise."""
        if self.mode == "linked":
            if self.anchor is None or anchor_link_address is None:
                raise ChannelError("the app says it links the runtime, but its executable has no anchor")
            return self.anchor - anchor_link_address
        if self.exe_base is None:
            raise ChannelError("the injected runtime did not report the executable's load address")
        return self.exe_base


class PatchChannel:
    def __init__(
        self, build_id: str, debug_dir: Path | None = None, reopen: tuple[Path, str] | None = None
    ) -> None:
        """A new channel, or with `reopen` (socket path, token) the one an earlier engine
        made for an app still running, whose runtime keeps reconnecting to that path."""
        self.build_id = build_id
        self.debug_dir = debug_dir  # where the patches' debug ELFs go (debug_elf.py)
        if reopen is None:
            self.token = secrets.token_hex(16)
            self._dir = Path(tempfile.mkdtemp(prefix="hotline-"))
            os.chmod(self._dir, 0o700)
            self.path = self._dir / "patch.sock"
        else:
            self.path, self.token = reopen
            self._dir = self.path.parent
            _own_private_dir(self._dir)
            self.path.unlink(missing_ok=True)  # the dead engine's socket: nobody listens on it
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(self.path))
        os.chmod(self.path, 0o600)
        self._server.listen(4)
        self._conn: socket.socket | None = None
        self._reader = None
        self._lock = threading.Lock()
        self.accepted = 0  # connections the app's runtime made and that said a valid hello
        self.quiet: QuietStop | None = None  # the ptrace helper holding the app's threads
        self.stop_mode = "signal"  # how entry jumps are written: "ptrace" or "signal"
        self.stop_fallback: str | None = None  # why not "ptrace", when it is "signal"
        # Of the last patch: (index in its `frames`, tid, thread name, how) of each old copy
        # with a frame on some thread; None when no stop could look (the signal stop).
        self.live_frames: list[dict] | None = None

    def pending(self) -> bool:
        """Whether another connection waits to be accepted (a second runtime in the app)."""
        readable, _, _ = select.select([self._server], [], [], 0)
        return bool(readable)

    def env(self) -> dict[str, str]:
        """The environment that tells the runtime where and how to connect."""
        env = {
            "HOTLINE_SOCKET": str(self.path),
            "HOTLINE_TOKEN": self.token,
            "HOTLINE_BUILD_ID": self.build_id,
        }
        if self.debug_dir is not None:
            env["HOTLINE_DEBUG_DIR"] = str(self.debug_dir)
        return env

    def accept(self, pid: int, timeout: float, alive: Callable[[], bool] = lambda: True) -> Hello:
        """Waits for the app with process id `pid` to connect and say hello; gives up at once
        when `alive()` turns false (the app exited first: a missing library, say)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ChannelError(
                    f"the app did not connect within {timeout:.0f}s (see its stderr: the runtime logs why)"
                )
            if not alive():
                raise ChannelError("the app exited before its runtime connected (see its output)")
            self._server.settimeout(min(left, 0.2))
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            conn.settimeout(timeout)
            reader = conn.makefile("rb")
            try:
                msg = json.loads(reader.readline())
            except (ValueError, OSError):
                conn.close()
                continue
            bad = problems("channel-hello", msg)
            if bad or msg["token"] != self.token or msg["build_id"] != self.build_id or msg["pid"] != pid:
                conn.close()  # not the app we launched: ignore it, keep waiting
                continue
            self._conn, self._reader = conn, reader
            self.accepted += 1
            self._start_quiet_stop(msg["pid"])
            region = msg["region"]
            return Hello(
                msg["pid"],
                msg["mode"],
                msg.get("anchor"),
                msg.get("exe_base"),
                region["start"],
                region["size"],
                msg["last_seq"],
            )

    def _start_quiet_stop(self, pid: int) -> None:
        """Starts the ptrace helper for the app, or says why the signal stop is used."""
        if self.quiet is not None and self.quiet.pid != pid:
            self.quiet.close()
            self.quiet = None
        self.stop_fallback = QuietStop.unavailable(pid)
        if self.stop_fallback is None and self.quiet is None:
            try:
                self.quiet = QuietStop(pid)
            except OSError as e:
                self.stop_fallback = f"cannot start the stop helper: {e}"
        self.stop_mode = "ptrace" if self.stop_fallback is None else "signal"

    def send_patch(self, message: dict, timeout: float = 30.0) -> dict:
        """Sends one patch message (token and build id added) and returns the app's result.
        Its `frames`, which stay on the engine's side, are the (start, end) of the old copies
        looked for on the threads' stacks in the quiet stop (`live_frames` then holds what
        was found)."""
        message = {"type": "patch", "token": self.token, "build_id": self.build_id, **message}
        frames = message.pop("frames", [])
        self.live_frames = None
        # The runtime asks for no stop without jumps: then no stack is looked at either.
        quiet = self.quiet is not None and bool(message["entry_jumps"])
        self._frames = [list(f) for f in frames]
        if quiet:
            message["stop"] = "engine"
        line = json.dumps(message, separators=(",", ":")).encode() + b"\n"
        with self._lock:
            answer = self._roundtrip(line, timeout)
            if quiet and answer.get("type") == "jumps-ready":
                answer = self._hold_and_write(message, answer, timeout)
        return self._checked(answer, "channel-result")

    def look(self, frames: list[tuple[int, int]]) -> list[dict] | None:
        """A quiet stop only to look for live frames, for a patch that wrote no entry jump
        (none planned, or `--no-entry-jumps`): the helper holds every thread, copies the
        stacks and releases them; no code of the app runs. None when it cannot look."""
        if self.quiet is None or not frames:
            return None
        with self._lock:
            request = {
                "op": "stop",
                "skip": [],
                "jumps": [],
                "restorers": [],
                "frames": [list(f) for f in frames],
            }
            if "error" in self.quiet.ask(request):
                return None
            released = self.quiet.ask({"op": "release"})
        return None if "error" in released else released.get("live", [])

    def _hold_and_write(self, patch: dict, ready: dict, timeout: float) -> dict:
        """The quiet stop's exchange (module doc); returns the runtime's result."""
        assert self.quiet is not None
        bad = problems("channel-jumps-ready", ready)
        if bad or ready["seq"] != patch["seq"]:
            raise ChannelError(f"malformed jumps-ready from the app: {'; '.join(bad) or ready}")
        seq = patch["seq"]
        t_stop = time.perf_counter()
        held: dict = {"error": "the app cannot serialize its cores (membarrier is unavailable)"}
        if ready["sync_core"]:
            windows = [[site, _jmp(site, target).hex()] for site, target in patch["entry_jumps"]]
            held = self.quiet.ask(
                {
                    "op": "stop",
                    "skip": [ready["tid"]],
                    "jumps": windows,
                    "restorers": ready["restorers"],
                    "frames": self._frames,
                }
            )
        try:
            synced = self._roundtrip(_line({"type": "sync-core", "seq": seq}), timeout)
        finally:  # never leave the app held, whatever the runtime answered
            if "error" not in held:
                self.quiet.send({"op": "release"})  # answered below, while the runtime works
        held_us = round((time.perf_counter() - t_stop) * 1e6)
        if synced.get("type") != "synced":
            raise ChannelError(f"the app did not serialize its cores: {synced}")
        written = {"type": "jumps-written", "token": self.token, "build_id": self.build_id, "seq": seq}
        if "error" in held:
            self.stop_mode, self.stop_fallback = "signal", held["error"]
            written |= {"stop": "signal", "error": held["error"]}
            return self._roundtrip(_line(written), timeout)
        self.stop_mode, self.stop_fallback = "ptrace", None
        failed = f"writing {len(held['failed'])} entry jumps failed" if held["failed"] else None
        written |= {
            "stop": "ptrace",
            "written": held["written"],
            "busy": held["busy"],
            "error": failed,
            "stop_us": held_us,
        }
        self._send(_line(written))
        released = self.quiet.answer()
        result = self._roundtrip(b"", timeout)
        if "error" in released:
            raise ChannelError(f"the stop helper could not release the app's threads: {released['error']}")
        self.live_frames = released.get("live", [])
        return result

    def send_debug_info(self, seq: int, path: str, timeout: float = 30.0) -> dict:
        """Tells the app where applied patch `seq`'s debug ELF is; returns its answer.

        Strictly request/response on the same lock as patches, so a patch result and a
        debug-info result can never be read for one another."""
        message = {"type": "debug-info", "token": self.token, "build_id": self.build_id, "seq": seq}
        line = json.dumps(message | {"path": path}, separators=(",", ":")).encode() + b"\n"
        return self.exchange(line, timeout, schema="channel-debug-info-result")

    def exchange(self, line: bytes, timeout: float = 30.0, schema: str = "channel-result") -> dict:
        """Sends one raw line and returns the app's answer, validated against `schema`."""
        with self._lock:
            result = self._roundtrip(line, timeout)
        return self._checked(result, schema)

    def _roundtrip(self, line: bytes, timeout: float) -> dict:
        """Sends one line and reads one JSON answer (the caller holds the lock)."""
        if self._conn is None or self._reader is None:
            raise ChannelError("the app is not connected")
        try:
            self._conn.settimeout(timeout)
            if line:
                self._conn.sendall(line)
            answer = self._reader.readline()
        except OSError as e:
            raise ChannelError(f"lost the connection to the app: {e}") from e
        if not answer:
            raise ChannelError("the app closed the patch channel")
        try:
            result = json.loads(answer)
        except ValueError as e:
            raise ChannelError(f"unreadable answer from the app: {answer[:200]!r}") from e
        if not isinstance(result, dict):
            raise ChannelError(f"unreadable answer from the app: {answer[:200]!r}")
        return result

    def _send(self, line: bytes) -> None:
        assert self._conn is not None
        try:
            self._conn.sendall(line)
        except OSError as e:
            raise ChannelError(f"lost the connection to the app: {e}") from e

    @staticmethod
    def _checked(result: dict, schema: str) -> dict:
        bad = problems(schema, result)
        if bad:
            raise ChannelError(f"malformed result from the app: {'; '.join(bad)}")
        return result

    def close(self, keep_path: bool = False) -> None:
        """Closes the channel; `keep_path` leaves its private folder in place, for the next
        engine to listen where the app's runtime reconnects (an engine handing over)."""
        if self.quiet is not None:
            self.quiet.close()
            self.quiet = None
        if self._reader is not None:
            # the connection's file object holds the socket open until it is closed too: the
            # app's runtime would never see the end and never reconnect to the next engine
            self._reader.close()
        for s in (self._conn, self._server):
            if s is not None:
                s.close()
        self.path.unlink(missing_ok=True)
        if not keep_path:
            self._dir.rmdir()


def _line(message: dict) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def _jmp(site: int, target: int) -> bytes:
    """`jmp target` (E9 rel32) placed at `site`; the loader checked the reach."""
    return b"\xe9" + (target - (site + 5)).to_bytes(4, "little", signed=True)


def _own_private_dir(folder: Path) -> None:
    """Makes sure `folder` is this user's own 0700 directory, creating it if it is gone:
    a folder someone else made at that path in /tmp must not receive our socket."""
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o700)
    st = folder.lstat()
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or stat.S_IMODE(st.st_mode) != 0o700:
        raise ChannelError(f"{folder} is not a private directory of this user")
