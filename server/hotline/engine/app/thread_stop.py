"""The quiet stop: the app's threads held with ptrace while its entry jumps are written
(Linux x86-64; ARCHITECTURE.md §6, docs/security.md).

A stop the app cannot observe. PTRACE_SEIZE + PTRACE_INTERRUPT (as CRIU and libcare do)
stops a thread without running any of its code: no handler, no signal mask, no
disposition involved, so a thread that blocks every signal stops like any other. A system
call the interrupt cuts short is restarted by the kernel when it says -ERESTART*; the calls
that say -EINTR instead (socket calls with a timeout, epoll_wait, sigtimedwait: signal(7),
"interruption by stop signals") are restarted here, exactly as the kernel restarts the
others: RAX = ORIG_RAX, RIP -= 2 back onto the `syscall` instruction. So is a call cut
short by a signal the app ignores (SIGCHLD by default, say): the kernel drops such a signal
when it is sent, unless the thread is traced (`sig_ignored`), so only the stop let it in.

The tracer is its own process, this file run as a script (`python -S thread_stop.py PID`),
never a thread of the engine: the kernel reports a tracee's stops to every thread of the
tracer's process, so the engine's `Popen.wait()`/`poll()` would take the main thread's
stop for an exit. It talks JSON lines on stdin/stdout and imports nothing from hotline but
`frame_scan.py`, which it loads from its own folder.

In the same stop the helper copies each held thread's stack, and after the release finds
the replaced functions that still have a frame on some thread (`live_frames.py` says what
that means to the user): the thread's RIP inside an old copy, or a return address into one
that directly follows a call instruction (`frame_scan.py`).

`QuietStop` is the engine's handle on that process.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

if __package__:
    from hotline.engine.app.frame_scan import Frames, find_live, mappings, stack_end
else:  # run as the helper script, which imports nothing from hotline
    from frame_scan import Frames, find_live, mappings, stack_end  # type: ignore[no-redef]

PTRACE_GETREGS, PTRACE_SETREGS, PTRACE_DETACH = 12, 13, 17
PTRACE_SEIZE, PTRACE_INTERRUPT = 0x4206, 0x4207
PTRACE_EVENT_STOP = 128
WALL = 0x40000000  # __WALL: wait for every thread, not only the leader
SIGTRAP = 5
EINTR = 4
#: SIGCHLD, SIGCONT, SIGURG, SIGWINCH: what the kernel ignores under the default disposition
#: (`sig_kernel_ignore`), as bits of the masks in /proc/PID/status (signal n is bit n - 1).
DEFAULT_IGNORED = sum(1 << (sig - 1) for sig in (17, 18, 23, 28))
RAX, ORIG_RAX, RIP, RSP = 10, 15, 16, 19  # indices in struct user_regs_struct
REGS = 27  # unsigned longs in user_regs_struct
SYSCALL = b"\x0f\x05"
JMP_LEN = 5
TRIES = 5  # stops tried before a site some thread stays inside is reported busy
RETRY_PAUSE_S = 0.001
STACK_SCAN = 64 << 10  # bytes above a thread's RSP searched for signal frames
UCONTEXT_RIP = 8 + 40 + 16 * 8  # rt_sigframe: pretcode, then ucontext_t; REG_RIP is greg 16


class StopError(Exception):
    """The threads could not be seized (no permission, a debugger attached)."""


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    libc.ptrace.restype = ctypes.c_long
    return libc


class Tracer:
    """Seizes, holds and releases the threads of one process (the helper's side)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.libc = _libc()
        self.held: dict[int, int] = {}  # stopped tid -> signal to hand back on release
        self.regs: dict[int, list[int]] = {}
        self.stacks: dict[int, tuple[int, int, bytes]] = {}  # tid -> (RIP, RSP, stack copy)
        self.restarted = 0
        self.mem = os.open(f"/proc/{pid}/mem", os.O_RDWR)

    def _ptrace(self, request: int, tid: int, addr: int = 0, data: int | ctypes.Array | None = 0) -> int:
        ret = self.libc.ptrace(request, tid, addr, data if isinstance(data, ctypes.Array) else data)
        if ret == -1:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
        return ret

    def stop_all(self, skip: set[int]) -> None:
        """Stops every thread but `skip` (the runtime's channel thread): lists the threads
        again after each round until a listing shows none new, as CRIU does; only a running
        thread creates threads, and every listed one is stopped by then. Each round
        interrupts all its threads before waiting for any, so they stop in parallel."""
        while True:
            new = [t for t in self._tids() if t not in skip and t not in self.held]
            if not new:
                return
            for tid in [t for t in new if self._interrupt(t)]:
                self._wait(tid)

    def _tids(self) -> list[int]:
        try:
            return [int(n) for n in os.listdir(f"/proc/{self.pid}/task")]
        except FileNotFoundError:
            raise StopError("the app exited") from None

    def _interrupt(self, tid: int) -> bool:
        """Seizes `tid` and asks it to stop; False if it exited meanwhile."""
        try:
            self._ptrace(PTRACE_SEIZE, tid)
        except OSError as e:
            if e.errno == 3:  # ESRCH: it exited meanwhile
                return False
            raise StopError(_why_not(self.pid, e)) from None
        self.held[tid] = 0  # seized: detached on release, whatever happens next
        with contextlib.suppress(OSError):  # it is exiting: the wait says so
            self._ptrace(PTRACE_INTERRUPT, tid)
        return True

    def _wait(self, tid: int) -> None:
        """Waits until `tid` stops, and reads its registers."""
        try:
            _, status = os.waitpid(tid, WALL)
        except ChildProcessError:
            status = 0
        if not os.WIFSTOPPED(status):
            del self.held[tid]  # exited
            return
        sig, event = os.WSTOPSIG(status), status >> 16
        # A signal-delivery stop (a signal arrived first) holds it too: handed back on release.
        self.held[tid] = 0 if event == PTRACE_EVENT_STOP else sig
        regs = (ctypes.c_ulong * REGS)()
        self._ptrace(PTRACE_GETREGS, tid, 0, regs)
        if self._cut_short(tid, regs, 0 if event == PTRACE_EVENT_STOP else sig):
            regs[RAX] = regs[ORIG_RAX]
            regs[RIP] -= 2
            self._ptrace(PTRACE_SETREGS, tid, 0, regs)
            self.restarted += 1
        self.regs[tid] = list(regs)

    def _cut_short(self, tid: int, regs: ctypes.Array, delivered: int = 0) -> bool:
        """Whether the stop made a system call fail with EINTR: the interrupt, or the signal
        `delivered` at this stop if the app ignores it; and no other signal is pending for
        the thread that would have interrupted it anyway (an ignored one would not have)."""
        if regs[ORIG_RAX] >= 1 << 63 or regs[RAX] != (1 << 64) - EINTR:
            return False
        if self._read(regs[RIP] - 2, 2) != SYSCALL:
            return False
        status = Path(f"/proc/{self.pid}/task/{tid}/status").read_text()
        field = {k: v.strip() for k, _, v in (line.partition(":") for line in status.splitlines())}
        caught, ignored = int(field.get("SigCgt", "0"), 16), int(field.get("SigIgn", "0"), 16)
        ignored |= DEFAULT_IGNORED & ~caught
        if delivered and not ignored >> (delivered - 1) & 1:
            return False  # a signal the app handles: EINTR is what it gets without a stop too
        pending = int(field.get("SigPnd", "0"), 16) | int(field.get("ShdPnd", "0"), 16)
        return pending & ~int(field.get("SigBlk", "0"), 16) & ~ignored == 0

    def _read(self, addr: int, size: int) -> bytes:
        try:
            return os.pread(self.mem, size, addr)
        except OSError:
            return b""

    def rips(self, restorers: list[int]) -> list[int]:
        """Where each held thread will run: its RIP, and the RIP saved in every signal frame
        on its stack (a thread inside its own SIGPROF handler returns into that one). A
        frame is found by its return address, a signal restorer the runtime listed; a word
        that only looks like one makes a site busy, never unsafe."""
        out = []
        # Searched by their low 5 bytes, which no run of zeros on a stack slows down.
        needles = [struct.pack("<Q", r) for r in restorers]
        for regs in self.regs.values():
            out.append(regs[RIP])
            if not needles:
                continue
            stack = self._read(regs[RSP], STACK_SCAN)
            for needle in needles:
                at = stack.find(needle[:5])
                while at != -1:
                    aligned = at % 8 == (-regs[RSP]) % 8 and stack[at : at + 8] == needle
                    if aligned and at + UCONTEXT_RIP + 8 <= len(stack):
                        out.append(struct.unpack_from("<Q", stack, at + UCONTEXT_RIP)[0])
                    at = stack.find(needle[:5], at + 1)
        return out

    def copy_stacks(self) -> None:
        """Copies each held thread's stack from RSP up (bounded by its mapping), for the
        live-frame scan made after the release."""
        self.stacks = {}
        try:
            spans = mappings(Path(f"/proc/{self.pid}/maps").read_text())
        except OSError:
            return
        starts = [lo for lo, _ in spans]
        for tid, regs in self.regs.items():
            end = stack_end(spans, starts, regs[RSP])
            self.stacks[tid] = (regs[RIP], regs[RSP], self._read(regs[RSP], end - regs[RSP]) if end else b"")

    def live(self, frames: Frames) -> list[dict]:
        """The old copies (indexes into `frames`) with a frame on a copied stack, per thread."""
        out = []
        for tid, (rip, rsp, stack) in self.stacks.items():
            for index, how in find_live(frames, rip, rsp, stack, self._read):
                try:
                    name = Path(f"/proc/{self.pid}/task/{tid}/comm").read_text().strip()
                except OSError:
                    name = "?"
                out.append({"frame": index, "tid": tid, "thread": name, "how": how})
        self.stacks = {}
        return out

    def write(self, site: int, code: bytes) -> bool:
        """Writes `code` at `site` through /proc/PID/mem, which ignores page protections as
        a debugger's breakpoints do (the runtime's self-check reads every jump back)."""
        try:
            return os.pwrite(self.mem, code, site) == len(code)
        except OSError:
            return False

    def release(self) -> None:
        """Detaches every held thread, handing back a signal that arrived while held."""
        for tid, sig in self.held.items():
            with contextlib.suppress(OSError):
                self._ptrace(PTRACE_DETACH, tid, 0, sig)
        self.held.clear()
        self.regs.clear()


def _why_not(pid: int, e: OSError) -> str:
    tracer = _tracer_pid(pid)
    if tracer:
        return f"a debugger (pid {tracer}) is attached to the app"
    return f"ptrace is not permitted here ({e.strerror})"


def _tracer_pid(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("TracerPid:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _stop_and_write(tracer: Tracer, request: dict) -> dict:
    """Stops every thread (retrying while one stays inside a window), writes the jumps no
    thread is inside of, and keeps the threads held until `release`."""
    windows = [(site, bytes.fromhex(code)) for site, code in request["jumps"]]
    skip = set(request["skip"])
    started = time.perf_counter()
    held_s = 0.0
    for attempt in range(1, TRIES + 1):
        t0 = time.perf_counter()
        tracer.stop_all(skip)
        rips = tracer.rips(request["restorers"])
        busy = [s for s, _ in windows if any(s < r < s + JMP_LEN for r in rips)]
        if not busy or attempt == TRIES:
            break
        tracer.release()
        held_s += time.perf_counter() - t0
        time.sleep(RETRY_PAUSE_S)
    written, failed = [], []
    for site, code in windows:
        if site not in busy:
            (written if tracer.write(site, code) else failed).append(site)
    return {
        "written": written,
        "busy": busy,
        "failed": failed,
        "threads": len(tracer.held),
        "restarted": tracer.restarted,
        "t0": t0,
        "held_s": held_s,
        "stop_s": time.perf_counter() - started,
    }


def main(pid: int) -> None:
    """The helper: one JSON request per line on stdin, one answer per line on stdout.
    Threads held when stdin closes (the engine died) are released."""
    tracer = Tracer(pid)
    out = sys.stdout
    t0 = 0.0
    held_s = 0.0
    frames: Frames = []
    for line in sys.stdin:
        request = json.loads(line)
        try:
            if request["op"] == "stop":
                tracer.restarted = 0
                frames = [(start, end) for start, end in request.get("frames", [])]
                answer = _stop_and_write(tracer, request)
                t0, held_s = answer.pop("t0"), answer.pop("held_s")
            else:
                tracer.release()
                answer = {"held_us": round((held_s + time.perf_counter() - t0) * 1e6)}
                answer["live"] = tracer.live(frames)
        except StopError as e:
            tracer.release()
            answer = {"error": str(e)}
        except OSError as e:
            tracer.release()
            answer = {"error": f"cannot hold the app's threads: {e}"}
        out.write(json.dumps(answer) + "\n")
        out.flush()
        if request["op"] == "stop" and "error" not in answer and frames:
            # still held: copied while the engine and the runtime serialize the cores
            tracer.copy_stacks()
    tracer.release()


def stop_mode(pid: int) -> str:
    """How entry jumps will be written into process `pid`: "ptrace" (the quiet stop) or
    "signal" (the runtime's fallback), as far as can be told without tracing it."""
    return "ptrace" if QuietStop.unavailable(pid) is None else "signal"


class QuietStop:
    """The engine's handle on the helper process of one app."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.proc = subprocess.Popen(
            [sys.executable, "-S", "-u", __file__, str(pid)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )

    @staticmethod
    def unavailable(pid: int) -> str | None:
        """Why the quiet stop cannot be used for process `pid`, or None when it can."""
        tracer = _tracer_pid(pid)
        if tracer:
            return f"a debugger (pid {tracer}) is attached"
        with contextlib.suppress(OSError, ValueError):
            if int(Path("/proc/sys/kernel/yama/ptrace_scope").read_text()) >= 3:
                return "ptrace is disabled (kernel.yama.ptrace_scope = 3)"
        return None

    def ask(self, request: dict) -> dict:
        """Sends one request and returns the helper's answer."""
        self.send(request)
        return self.answer()

    def send(self, request: dict) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
        except OSError:
            pass  # the answer says the helper is gone

    def answer(self) -> dict:
        assert self.proc.stdout is not None
        try:
            line = self.proc.stdout.readline()
        except OSError as e:
            return {"error": f"the stop helper is gone: {e}"}
        if not line:
            return {"error": "the stop helper exited"}
        return json.loads(line)

    def close(self) -> None:
        """Ends the helper; it releases whatever it holds when its stdin closes."""
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


if __name__ == "__main__":
    main(int(sys.argv[1]))
