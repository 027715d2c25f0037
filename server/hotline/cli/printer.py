"""Engine events -> terminal lines: what a person reads (`HumanPrinter`), or one JSON event per
line (`--json`)."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable

from hotline.cli.console import Console
from hotline.engine.build.rustc_diagnostics import error_count
from hotline.engine.session_state import Event


def _plural(n: int, word: str, plural: str = "") -> str:
    """`1 function`, `2 functions`: never `1 functions` (`plural` when it is not word + s)."""
    return f"{n} {word if n == 1 else plural or word + 's'}"


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
            inlined = e.get("inlined_into", {})
            ran = [
                f"{f} (inlined into {', '.join(inlined[f])})" if f in inlined else f for f in e["functions"]
            ]
            say(f"ran: {', '.join(ran)} (patch #{e['seq']}, {e['ms']:.0f}ms after it)", "ok")
        elif kind == "returned":
            say(
                f"returned: {', '.join(e['functions'])} no longer runs old code on any thread: "
                f"its new code runs from its next call (patch #{e['seq']})",
                "ok",
            )
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


def json_printer(e: Event) -> None:
    """One event per line: events come from several threads, so each line is written whole."""
    line = json.dumps(e) + "\n"
    with _json_lock:
        sys.stdout.write(line)
        sys.stdout.flush()


def _ran(function: str, hosts: list[str]) -> str:
    """A receipt's function, with the first copy it ran inlined into, if it ran only there."""
    if not hosts:
        return function
    more = f" and {len(hosts) - 1} more" if len(hosts) > 1 else ""
    return f"{function} (inlined into {hosts[0]}{more})"
