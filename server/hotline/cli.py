"""`hotline`: the engine for a terminal user.

`hotline run [DIR] [--bin NAME] [--release | --profile NAME] [--features F] [--json] [-- APP ARGS]`
builds the app, launches it, watches its sources and patches the running process on every
save; in a terminal, keys restart (r), show the last patch (p) and quit (q), as `flutter
run` does. `hotline lsp` starts the language server on stdio.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import queue
import re
import select
import signal
import sys
import termios
import threading
import time
import traceback
import tty
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from hotline.engine.app.preload import cache_root
from hotline.engine.build.rustc_diagnostics import error_count
from hotline.engine.build.workspace import owning_crate
from hotline.engine.errors import HotlineError, InternalError
from hotline.engine.session import RESTART_FILES, Session
from hotline.engine.session_state import Event

SIGNAL_POLL_S = 0.25  # how soon a signal another thread took is acted on while idle

#: SGR codes of the styles `Console.paint` knows.
_STYLES = {"prefix": "36", "ok": "32", "error": "31", "warn": "33", "dim": "2"}
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

#: The key hint printed once the app runs, when stdin is a terminal.
KEY_HINT = "r restart · p last patch · q quit"
KEYS = {
    "r": "restart: full rebuild and relaunch (what `restart required` asks for)",
    "p": "show the last patch: its functions, phases and machine-code diff",
    "q": "quit: stop the app and exit",
    "h": "list these keys",
}


def _plural(n: int, word: str, plural: str = "") -> str:
    """`1 function`, `2 functions`: never `1 functions` (`plural` when it is not word + s)."""
    return f"{n} {word if n == 1 else plural or word + 's'}"


class Console:
    """Hotline's own lines on stderr, whole (several threads print) and coloured only for a
    terminal that wants colour (https://no-color.org), so they stand out from the app's."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.color = self.tty and not os.environ.get("NO_COLOR")
        self.log_file = cache_root() / "cli.log"  # the session's log, once there is a session
        self._lock = threading.RLock()

    def paint(self, text: str, style: str | None) -> str:
        return f"\x1b[{_STYLES[style]}m{text}\x1b[0m" if self.color and style else text

    def write(self, text: str, end: str = "\n") -> None:
        """Writes text as is, less its colours (rustc's rendered errors have some) when plain."""
        with self._lock:
            self.stream.write((text if self.color else _ANSI.sub("", text)) + end)
            self.stream.flush()

    def line(self, text: str, style: str | None = None) -> str:
        return f"{self.paint('[hotline]', 'prefix')} {self.paint(text, style)}"

    def say(self, text: str, style: str | None = None) -> None:
        self.write(self.line(text, style))

    def error(self, text: str) -> None:
        """`hotline: <first line>` in red; later lines (rustc's errors, say) as they are."""
        first, _, rest = text.partition("\n")
        self.write(self.paint(f"hotline: {first}", "error") + (f"\n{rest.rstrip()}" if rest.strip() else ""))

    def internal_error(self, exc: BaseException) -> None:
        """One line for a bug in hotline itself; its traceback goes to a log file, not the terminal."""
        log = self.log_file
        try:
            log.parent.mkdir(parents=True, exist_ok=True)
            with log.open("a") as f:
                f.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} hotline run\n")
                f.write("".join(traceback.format_exception(exc)))
            where = f" (details: {log})"
        except OSError:
            where = ""
        self.error(f"internal error: {type(exc).__name__}: {exc}{where}")


class HumanPrinter:
    """Prints events the way a person reads them: app output as is, one line per patch."""

    def __init__(self, console: Console, app_alive: Callable[[], bool]) -> None:
        self.console = console
        self.app_alive = app_alive
        self.stopping: set[int] = set()  # pids hotline itself is stopping: their exit is no news
        self._progress = False  # a `building n/m` line is open (a terminal rewrites it in place)

    def __call__(self, e: Event) -> None:
        try:
            self._print(e)
        except Exception as exc:  # an event this printer does not understand is not fatal
            self.console.internal_error(exc)

    def _print(self, e: Event) -> None:
        kind = e["event"]
        say = self.console.say
        if kind == "app-output":
            print(e["line"], file=sys.stdout if e["stream"] == "stdout" else sys.stderr, flush=True)
        elif kind == "build-started":
            say("full build (keeps every symbol so patches can call anything)…")
        elif kind == "build-progress" and self.console.tty:
            line = f"building {e['done']}/{e['total']} {e['crate']:<30}"
            self.console.write(f"\r{self.console.paint('[hotline]', 'prefix')} {line}", end="")
            self._progress = True
        elif kind == "build-finished":
            if self._progress:
                self.console.write("")
                self._progress = False
            if e["ok"]:
                say(f"built in {e['ms'] / 1000:.1f}s")
            else:
                say("build failed", "error")
        elif kind == "orphan-stopped":
            why = f": {e['reason']}" if e.get("reason") else ""
            say(f"stopped the app (pid {e['pid']}) an earlier hotline left running unattached{why}")
        elif kind == "app-adopted":
            say(
                f"re-attached to the running app (pid {e['pid']}, {_plural(e['seq'], 'patch', 'patches')} "
                f"applied so far), runtime {_RUNTIME_MODES[e['runtime']]}{_stop_mode(e)}; watching for changes"
            )
        elif kind == "runtime-build-started":
            say("building the runtime library to preload (once per toolchain)…")
        elif kind == "runtime-build-finished":
            if e["ok"]:
                say(f"runtime library built in {e['ms'] / 1000:.1f}s")
            else:
                say("runtime library build failed", "error")
        elif kind == "app-started":
            say(
                f"app started (pid {e['pid']}), runtime {_RUNTIME_MODES[e['runtime']]}{_stop_mode(e)}; "
                "watching for changes"
            )
        elif kind == "patched":
            say(patched_line(self.console, e))
            for w in e.get("warnings", []):
                say(f"warning [{w['rule']}]: {w['message']}", "warn")
        elif kind == "compile-error":
            for d in e["diagnostics"]:
                if d.get("level") == "error":
                    self.console.write(d.get("rendered") or d["message"], end="")
            if e.get("message"):
                say(e["message"], "error")
            errors = _plural(error_count(e["diagnostics"]), "error")
            say(f"compile error ({errors}): the app keeps running its last good code", "error")
        elif kind == "no-change":
            say(f"no code change: {e['message']}" if e.get("message") else "no code change")
        elif kind == "patch-refused":
            say(
                f"patch refused [{e['rule']}]: {e['reason']}; the app keeps running its last good code",
                "error",
            )
        elif kind == "app-exited":
            self._exited(e)
        elif kind == "debug-info-failed":
            say(f"warning [{e['rule']}]: {e['message']}", "warn")
        elif kind == "jumps-landed":
            still = f"; still pending: {', '.join(e['pending'])}" if e["pending"] else ""
            say(
                f"entry jumps landed (#{e['seq']}): old code of {', '.join(e['functions'])} now runs the new{still}",
                "ok",
            )
        elif kind == "jumps-pending":
            say(
                f"entry jumps still pending for {', '.join(e['functions'])} ({e['reason']}): they go with the next patch",
                "warn",
            )
        elif kind == "ran":
            say(f"ran: {', '.join(e['functions'])} (patch #{e['seq']}, {e['ms']:.0f}ms after it)", "ok")
        elif kind == "not-run":
            for w in e["warnings"]:
                say(f"not called yet [{w['rule']}]: {w['message']}", "warn")
        elif kind == "restarting":
            say(f"{e['reason']}: full rebuild and relaunch")
        elif kind == "engine-error":
            keeps = "; the app keeps running its last good code" if self.app_alive() else ""
            say(f"internal error: {e['message']} (details: {e['log']}){keeps}", "error")

    def _exited(self, e: Event) -> None:
        if e["pid"] in self.stopping:
            self.stopping.discard(e["pid"])
            self.console.say(f"app stopped (pid {e['pid']})")
            return
        if e.get("signal"):
            how = f" (signal {e['signal']})"
        else:  # no code either: an app re-attached to is not this process's child
            how = f" (code {e['code']})" if e.get("code") is not None else ""
        last = e.get("last_patch")
        after = f" after patch #{last['seq']} ({', '.join(last['functions'])})" if last else ""
        style = None if e.get("code") == 0 else "error"
        self.console.say(f"app exited{how}{after}; save a source file to relaunch it", style)


def patched_line(console: Console, e: Event) -> str:
    """`patched in 142ms  (rustc 118 · …)   1 function: app::tick`, counted in words."""
    phases = " · ".join(f"{k} {v:.0f}" for k, v in e["phases"].items())
    units = f" · linked {e['units']['linked']}/{e['units']['total']} units" if "units" in e else ""
    head = console.paint(f"patched in {e['ms']:.0f}ms", "ok")
    line = f"{head}  {console.paint(f'({phases}{units})', 'dim')}   {patched_functions(e)}"
    return line + live_and_pending(console, e)


def live_and_pending(console: Console, e: Event) -> str:
    """`· still running old code: app::worker (thread worker-1) [HL1012]` and the functions
    whose entry jumps are pending, for the end of the patched line."""
    out = ""
    frames = (e.get("live_frames") or {}).get("frames") or []
    if frames:
        shown = ", ".join(f"{f['function']} (thread {f['thread']})" for f in frames[:3])
        more = f" and {len(frames) - 3} more" if len(frames) > 3 else ""
        out += console.paint(f" · still running old code: {shown}{more} [HL1012]", "warn")
    pending = (e.get("pending_jumps") or {}).get("pending") or []
    if pending:
        out += console.paint(f" · entry jumps pending: {', '.join(pending[:3])}", "warn")
    return out


def patched_functions(e: Event) -> str:
    """`2 functions: a, b (new)`, and how many were relinked only because something moved."""
    names = e["functions"] + [f"{n} (new)" for n in e["added"]]
    shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
    what = f"{_plural(len(names), 'function')}: {shown}" if names else "no function edited"
    relinked = e.get("relinked", 0)
    if relinked:
        uses = "it uses" if relinked == 1 else "they use"
        what += f"; {_plural(relinked, 'function')} relinked (a constant or line {uses} moved)"
    return what


#: How the banner describes the runtime's mode (events.schema.json, app-started).
_RUNTIME_MODES = {
    "linked": "linked (hotline::call safe points and on_patch available)",
    "injected": "injected (the app does not depend on it: no hotline::call safe points)",
}


def _stop_mode(e: Event) -> str:
    """How the banner says the app's threads are stopped for entry jumps (issue 26)."""
    if e.get("stop") == "signal":
        return ", threads stopped by signal (ptrace unavailable: calls may see EINTR)"
    return ", threads stopped quietly (ptrace)" if e.get("stop") == "ptrace" else ""


_json_lock = threading.Lock()


def _json_printer(e: Event) -> None:
    """One event per line: events come from several threads, so each line is written whole."""
    line = json.dumps(e) + "\n"
    with _json_lock:
        sys.stdout.write(line)
        sys.stdout.flush()


def _classify(changes: set[tuple[object, str]]) -> str | None:
    """'restart' for manifest/build-script edits, else 'patch' (only watched files come here)."""
    names = {Path(p).name for _, p in changes}
    if names & set(RESTART_FILES):
        return "restart"
    return "patch" if names else None  # Rust sources, and files the build read


def _fixable_by_a_save(diagnostics: list[dict]) -> bool:
    """An error at a line of a file hotline watches: Rust source, or Cargo.toml (where the
    engine puts its refusal of a profile without debug info). A save there can fix it."""
    return any(
        d.get("level") == "error" and any(_watched(span["file_name"]) for span in d.get("spans") or [])
        for d in diagnostics
    )


def _error_files(diagnostics: list[dict]) -> set[Path]:
    """The watched files rustc's errors point at (relative to the workspace root, as cargo runs rustc)."""
    return {
        Path(span["file_name"])
        for d in diagnostics
        if d.get("level") == "error"
        for span in d.get("spans") or []
        if _watched(span["file_name"])
    }


def _watched(path: str) -> bool:
    """A file whose save hotline acts on (a patch, or a rebuild for the manifest)."""
    p = Path(path)
    return "target" not in p.parts and (p.suffix == ".rs" or p.name in RESTART_FILES)


def _stop_on_signal(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt  # `kill`, or the terminal closing, stops the app too, as Ctrl-C does


class _HandOver(Exception):
    """Another engine (an editor's "Take over") asked for the app: SIGUSR1."""


def _hand_over_on_signal(_signum: int, _frame: object) -> None:
    raise _HandOver


class Keys:
    """Single keys typed in the terminal (cbreak mode: no Enter, no echo), read on a thread.

    While the app itself has the terminal in raw mode (a TUI: ISIG off) its keys are left to
    it. The terminal's mode is restored on exit, however the run ends."""

    def __init__(self, fd: int, on_key: Callable[[str], None]) -> None:
        self.fd = fd
        self.on_key = on_key
        self._saved = termios.tcgetattr(fd)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="hotline-keys", daemon=True)

    @staticmethod
    def available(stream: TextIO) -> bool:
        """stdin is a terminal this process may set the mode of (not a background job)."""
        try:
            return stream.isatty() and os.tcgetpgrp(stream.fileno()) == os.getpgrp()
        except (AttributeError, OSError, ValueError):  # no stdin at all, or a closed one
            return False

    def start(self) -> None:
        tty.setcbreak(self.fd, termios.TCSANOW)
        self._thread.start()

    def restore(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=1)
        with contextlib.suppress(termios.error):  # a terminal that went away has no mode to restore
            termios.tcsetattr(self.fd, termios.TCSANOW, self._saved)

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                if not termios.tcgetattr(self.fd)[3] & termios.ISIG:  # the app's raw mode: its keys
                    self._stop.wait(0.1)
                    continue
                if not select.select([self.fd], [], [], 0.1)[0]:
                    continue
                data = os.read(self.fd, 64)
            except (OSError, termios.error):  # the terminal went away
                return
            if not data:
                return
            if data.startswith(b"\x1b"):
                continue  # an arrow or function key, not a command
            for key in data.decode(errors="ignore"):
                if key in KEYS:
                    self.on_key(key)


class Runner:
    """One `hotline run`: saves (from the watcher thread) and keys (from the key thread) go
    through one queue into one loop, so no two session operations ever run at once."""

    def __init__(self, console: Console, printer: Callable[[Event], None]) -> None:
        self.console = console
        self.printer = printer
        # ("changes", set of watchfiles changes), ("key", str) or ("watch-failed", exception)
        self.queue: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._held: tuple[str, Any] | None = None
        self.session: Session | None = None
        self.interactive = False
        self.hinted = False
        self.compile_failed = False  # the last fat build failed at a line a save can fix
        self.failed_files: set[Path] = set()  # the watched files its errors point at
        self.build_started = 0.0  # wall time the last fat build started
        self.waiting = False  # for that save
        self.last_patch: Event | None = None  # the newest `patched` event of this app process
        self.attached = "launched"  # how hotline got the app: "launched" or "re-attached to"
        self.app_pid: int | None = None

    def on_event(self, e: Event) -> None:
        kind = e["event"]
        if kind == "build-started":
            self.build_started = time.time()
        elif kind == "build-finished" and not e["ok"]:
            self.compile_failed = _fixable_by_a_save(e.get("diagnostics") or [])
            self.failed_files = _error_files(e.get("diagnostics") or [])
        elif kind in ("app-started", "app-adopted"):
            self.app_pid, self.last_patch = e["pid"], None
            self.attached = "launched" if kind == "app-started" else "re-attached to"
        elif kind == "patched":
            self.last_patch = e
        self.printer(e)
        if kind in ("app-started", "app-adopted") and self.interactive and not self.hinted:
            # Right under "app started", before the app draws: a line printed later would
            # scroll a full-screen app's first row away.
            self.hinted = True
            self.console.say(KEY_HINT, "dim")

    def start(self, operation: Callable[[], int]) -> bool:
        """A fat build and launch (or re-attach). On failure it prints why and returns False,
        except after a compile error, which waits for the save that fixes it."""
        self.compile_failed = False
        try:
            operation()
        except InternalError:
            return False  # already reported, by its `engine-error` event
        except HotlineError as e:
            self.console.error(str(e))
            self.waiting = self.compile_failed
            if self.waiting:
                self.console.say("waiting for a change to retry…", "warn")
            return self.waiting
        self.waiting = False
        return True

    def watch(self, stop: threading.Event) -> None:
        """The watcher thread: each batch of saved sources becomes one queue item.

        Once inotify is armed every save is an event; a save before that (during the fat
        build, or the launch) is found by its mtime, and only then is `watching` reported.
        watchfiles' own `watch()` cannot say when it is armed (it yields on a quiet timeout
        only, and an app writing its output files under the watched target folder is never
        quiet), so its Rust watcher is driven directly."""
        from watchfiles import Change
        from watchfiles._rust_notify import RustNotify

        assert self.session is not None
        roots = [self.session.workspace_root, *self.session.outside_packages.values()]
        try:  # outside packages too: their edits are refused, not missed
            with RustNotify([str(p) for p in roots], False, False, 300, True, False) as notify:
                missed = self._saved_before_watching()
                if missed:
                    self.queue.put(("changes", missed))
                self.on_event({"event": "watching", "roots": [str(p) for p in roots]})
                while not stop.is_set():
                    raw = notify.watch(50, 1, 500, stop)
                    if isinstance(raw, str):  # "timeout", "stop", or "signal" (for the main thread)
                        continue
                    changes = {
                        (Change(kind), path)
                        for kind, path in raw
                        if _watched(path) or self._read_by_the_build(path)
                    }
                    if changes:
                        self.queue.put(("changes", changes))
        except Exception as e:  # inotify's watch limit, say: without a watcher there is no patching
            self.queue.put(("watch-failed", e))

    def _read_by_the_build(self, path: str) -> bool:
        """A file rustc read for the app that is not Rust (`include_str!`, `include_bytes!`)."""
        assert self.session is not None
        return "target" not in Path(path).parts and owning_crate(self.session.crates, Path(path)) is not None

    def _saved_before_watching(self) -> set[tuple[Any, str]]:
        """Sources saved after their crate was compiled and before the watcher started; after
        a failed build (no crate compiled), the files its errors point at saved since it began."""
        from watchfiles import Change

        assert self.session is not None
        target = self.session.target_dir
        if self.waiting:
            root = self.session.workspace_root
            return {
                (Change.modified, str(path))
                for name in self.failed_files
                if (path := root / name).exists() and path.stat().st_mtime > self.build_started
            }
        return {
            (Change.modified, str(path))
            for crate in self.session.crates
            for path in crate.sources()
            # not what the build itself wrote (a build script's generated code, say)
            if "target" not in path.parts
            and not path.is_relative_to(target)
            and path.exists()
            and path.stat().st_mtime > crate.compiled_at
        }

    def _wait(self) -> tuple[str, Any]:
        """The next queue item, waited for in short steps: Python runs a signal's handler
        (Ctrl-C, `kill`) in the main thread only, and when the kernel delivered the signal to
        another thread (the watcher's, say), a main thread blocked for good in `get()` would
        never wake to run it, and hotline would not stop."""
        while True:
            with contextlib.suppress(queue.Empty):
                return self.queue.get(timeout=SIGNAL_POLL_S)

    def _next(self) -> tuple[str, Any]:
        """The next queue item; saves queued behind each other are merged into one."""
        item, self._held = self._held or self._wait(), None
        if item[0] != "changes":
            return item
        changes = set(item[1])
        while self._held is None:
            try:
                more = self.queue.get_nowait()
            except queue.Empty:
                break
            if more[0] == "changes":
                changes |= more[1]
            else:
                self._held = more
        return "changes", changes

    def loop(self) -> int:
        """Acts on saves and keys until `q` (0), or a failure with no app left running (1)."""
        assert self.session is not None
        while True:
            kind, value = self._next()
            if kind == "key" and value == "q":
                return 0
            if kind == "watch-failed":
                self.console.error(f"cannot watch {self.session.workspace_root} for changes: {value}")
                return 1
            try:
                self._act(kind, value)
            except HotlineError as e:
                self.console.error(str(e))
            except Exception as e:
                self.console.internal_error(e)
                if not self.session.app_alive:
                    return 1

    def _act(self, kind: str, value: Any) -> None:
        session = self.session
        assert session is not None
        if kind == "changes":
            what = _classify(value)
            if what == "restart":
                self._restart("Cargo.toml or build.rs changed")
            elif what == "patch" and not session.app_alive:
                self._restart(
                    "a source changed since the failed build" if self.waiting else "the app is not running"
                )
            elif what == "patch":
                session.patch([Path(p) for _, p in value])
        elif value == "r":
            self._restart("restart requested (r)")
        elif value == "p":
            self._show_last_patch()
        elif value == "h":
            paint = self.console.paint
            self.console.write(
                "\n".join(self.console.line(f"{paint(k, 'prefix')}  {what}") for k, what in KEYS.items())
            )

    def _restart(self, reason: str) -> None:
        assert self.session is not None
        self.printer({"event": "restarting", "reason": reason})
        self.expect_exit()
        self.start(self.session.restart)

    def expect_exit(self) -> None:
        """Hotline is about to stop the app: its exit is not reported as the app's own."""
        if self.app_pid is not None and isinstance(self.printer, HumanPrinter):
            self.printer.stopping.add(self.app_pid)

    def _show_last_patch(self) -> None:
        assert self.session is not None
        e = self.last_patch
        if e is None:
            self.console.say(f"no patch applied since the app was {self.attached}")
            return
        console = self.console
        out = [console.line(f"last patch, #{e['seq']}: {patched_line(console, e)}")]
        for name, diff in self.session.last_patch_disassembly():
            out.append(console.line(f"machine code of {name}:"))
            for line in diff.splitlines():
                header = line.startswith(("+++", "---"))
                out.append(console.paint(line, "dim" if header else {"+": "ok", "-": "error"}.get(line[:1])))
        console.write("\n".join(out))  # one write: the app's lines cannot come in between


def run(args: argparse.Namespace) -> int:
    """`hotline run`: exit status 0 after q, Ctrl-C or `kill`; 1 when the app cannot be run."""
    # SIGINT too: a process started in the background of a non-interactive shell (CI) inherits
    # it ignored, and Python then leaves Ctrl-C ignored.
    signal.signal(signal.SIGINT, _stop_on_signal)
    signal.signal(signal.SIGTERM, _stop_on_signal)
    signal.signal(signal.SIGHUP, _stop_on_signal)
    signal.signal(signal.SIGUSR1, _hand_over_on_signal)
    console = Console(sys.stderr)
    runner = Runner(console, _json_printer)
    if not args.json:
        runner.printer = HumanPrinter(
            console, lambda: runner.session is not None and runner.session.app_alive
        )

    def thread_failed(hook: threading.ExceptHookArgs) -> None:
        """An engine thread's bug: one line, as anywhere else, and never a traceback."""
        if hook.exc_value is not None and not isinstance(hook.exc_value, SystemExit):
            console.internal_error(hook.exc_value)

    threading.excepthook = thread_failed
    try:
        runner.session = Session(
            Path(args.dir),
            runner.on_event,
            bin_name=args.bin,
            app_args=args.app_args,
            capture_output=args.json,
            entry_jumps=not args.no_entry_jumps,
            debug_info=not args.no_debug_info,
            features=args.features,
            profile=args.profile,
            allow_layout_changes=frozenset(args.allow_layout_change or ()),
        )
    except HotlineError as e:
        console.error(str(e))
        return 1
    except Exception as e:
        console.internal_error(e)
        return 1
    console.log_file = runner.session.log_file  # the engine's own tracebacks are there too
    on_key = lambda key: runner.queue.put(("key", key))  # noqa: E731
    keys = Keys(sys.stdin.fileno(), on_key) if Keys.available(sys.stdin) else None
    runner.interactive = keys is not None
    stop_watching = threading.Event()
    handed_over = False
    try:
        if keys is not None:
            keys.start()
        if not runner.start(runner.session.start):
            return 1
        watcher = threading.Thread(target=runner.watch, args=(stop_watching,), name="hotline-watch")
        watcher.daemon = True
        watcher.start()
        return runner.loop()
    except KeyboardInterrupt:
        return 0
    except _HandOver:
        handed_over = True
        return 0
    except Exception as e:
        console.internal_error(e)
        return 1
    finally:  # however hotline ends, the app it launched ends with it (unless handed over),
        # and the terminal's mode is back
        _ignore_interrupts()  # a second Ctrl-C cannot cut this short
        stop_watching.set()
        try:
            if handed_over:
                runner.session.detach()
                console.say("handed the app over to another Hotline; exiting")
            else:
                runner.expect_exit()
                runner.session.stop()
        finally:
            if keys is not None:
                keys.restore()


def _ignore_interrupts() -> None:
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1):
        signal.signal(signum, signal.SIG_IGN)


def _version() -> str:
    try:
        return importlib.metadata.version("hotline-reload")
    except importlib.metadata.PackageNotFoundError:
        return "(not installed: run from a source checkout)"


_RUN_EPILOG = """\
The app needs nothing: no dependency and no code change. The runtime is built once per
toolchain and preloaded into it. Optionally make the app depend on the runtime crate
(package hotline-runtime) for safe points (hotline::call) and patch handlers
(hotline::on_patch); it is then linked in instead.

keys, when stdin is a terminal:
  r  restart: full rebuild and relaunch (what `restart required` asks for)
  p  show the last patch: its functions, phases and machine-code diff
  q  quit: stop the app and exit
  h  list these keys

A Cargo.toml or build.rs change rebuilds and relaunches; so does a save after the app
exited. A compile error in the first build waits for the save that fixes it.
Colours: only on a terminal, and never with NO_COLOR set."""


def parser() -> argparse.ArgumentParser:
    """The command line: `run` has the editor settings' build options (schemas/settings)."""
    top = argparse.ArgumentParser(prog="hotline", description="Save-to-patch hot reloading for Rust.")
    top.add_argument("--version", action="version", version=f"hotline {_version()}")
    sub = top.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser(
        "run",
        help="build, launch, watch and patch an app",
        description="Build the app keeping every symbol, launch it, watch its sources and patch\n"
        "the running process on every save.",
        epilog=_RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="%(prog)s [options] [dir] [-- APP ARGS]",
    )
    p_run.add_argument(
        "dir", nargs="?", default=".", help="the app's crate directory (default: ., the current directory)"
    )
    p_run.add_argument("--bin", metavar="NAME", help="which binary target to run, if the package has several")
    profile = p_run.add_mutually_exclusive_group()
    profile.add_argument(
        "--release",
        action="store_const",
        dest="profile",
        const="release",
        help="build with the release profile (= --profile release)",
    )
    profile.add_argument("--profile", metavar="NAME", help="build with this cargo profile (default: dev)")
    p_run.add_argument(
        "--features",
        metavar="LIST",
        action="append",
        help="cargo features to enable, comma or space separated; may be repeated",
    )
    p_run.add_argument(
        "--allow-layout-change",
        metavar="TYPE",
        action="append",
        help="patch even if this type's layout changed (rule HL1002), e.g. app::Particle, "
        "because no value of it survives a safe point; may be repeated",
    )
    p_run.add_argument("--json", action="store_true", help="print one JSON event per line")
    p_run.add_argument(
        "--no-entry-jumps",
        action="store_true",
        help="strict safe points: old code reaches new code only through hotline::call",
    )
    p_run.add_argument(
        "--no-debug-info",
        action="store_true",
        help="write no debug info for patches (debuggers, backtraces and perf then do not see "
        "patched code); it is made after each patch, off the save's path, so this saves CPU only",
    )
    p_run.add_argument("app_args", nargs="*", metavar="APP ARGS", help="arguments for the app (after --)")
    sub.add_parser("lsp", help="start the language server on stdio")
    return top


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Parses argv; for `run`, everything after `--` is the app's, and features are one list."""
    # Everything after `--` is the app's, even nothing (argparse rejects a bare trailing `--`).
    app_args = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = parser().parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    if args.command == "run":
        args.app_args = [*args.app_args, *app_args]
        args.features = [f for arg in args.features or () for f in re.split(r"[,\s]+", arg) if f]
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.command == "lsp":
        from hotline.lsp.server import main as lsp_main

        lsp_main()
        return
    sys.exit(run(args))
