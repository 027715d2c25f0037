"""`hotline`: the engine for a terminal user.

`hotline run [DIR] [--bin NAME] [--json] [-- APP ARGS]` builds the app, launches it,
watches its sources and patches the running process on every save.
`hotline lsp` starts the language server on stdio.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from hotline.engine.session import RESTART_FILES, Event, HotlineError, Session, error_count


class HumanPrinter:
    """Prints events the way a person reads them: app output as is, one line per patch."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tty = sys.stderr.isatty()

    def __call__(self, e: Event) -> None:
        with self._lock:
            self._print(e)

    def _print(self, e: Event) -> None:
        kind = e["event"]
        say = lambda text: print(f"[hotline] {text}", file=sys.stderr, flush=True)  # noqa: E731
        if kind == "app-output":
            print(e["line"], file=sys.stdout if e["stream"] == "stdout" else sys.stderr, flush=True)
        elif kind == "build-started":
            say("full build (keeps every symbol so patches can call anything)…")
        elif kind == "build-progress" and self._tty:
            print(f"\r[hotline] building {e['done']}/{e['total']} {e['crate']:<30}", end="", file=sys.stderr)
        elif kind == "build-finished":
            if self._tty:
                print(file=sys.stderr)
            say(f"built in {e['ms'] / 1000:.1f}s" if e["ok"] else "build failed")
        elif kind == "orphan-stopped":
            say(f"stopped the app (pid {e['pid']}) an earlier hotline left running unattached")
        elif kind == "runtime-build-started":
            say("building the runtime library to preload (once per toolchain)…")
        elif kind == "runtime-build-finished":
            say(
                f"runtime library built in {e['ms'] / 1000:.1f}s"
                if e["ok"]
                else "runtime library build failed"
            )
        elif kind == "app-started":
            say(f"app started (pid {e['pid']}), runtime {_RUNTIME_MODES[e['runtime']]}; watching for changes")
        elif kind == "patched":
            p = e["phases"]
            names = e["functions"] + [f"{n} (new)" for n in e["added"]]
            shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
            phases = " · ".join(f"{k} {v:.0f}" for k, v in p.items())
            units = f" · linked {e['units']['linked']}/{e['units']['total']} units" if "units" in e else ""
            what = (
                f"{len(names)} function{'' if len(names) == 1 else 's'}: {shown}"
                if names
                else "no function edited"
            )
            if e.get("relinked"):
                what += f" ({e['relinked']} relinked: a constant or line they use moved)"
            say(f"patched in {e['ms']:.0f}ms  ({phases}{units})   {what}")
            for w in e.get("warnings", []):
                say(f"warning [{w['rule']}]: {w['message']}")
        elif kind == "compile-error":
            for d in e["diagnostics"]:
                if d.get("level") == "error":
                    print(d.get("rendered") or d["message"], file=sys.stderr, end="", flush=True)
            if e.get("message"):
                say(e["message"])
            errors = error_count(e["diagnostics"])
            say(
                f"compile error ({errors} error{'s' * (errors != 1)}): the app keeps running its last good code"
            )
        elif kind == "no-change":
            say("no code change")
        elif kind == "patch-refused":
            say(f"patch refused [{e['rule']}]: {e['reason']}; the app keeps running its last good code")
        elif kind == "app-exited":
            how = f"signal {e['signal']}" if e.get("signal") else f"code {e['code']}"
            say(f"app exited ({how})")
        elif kind == "debug-info-failed":
            say(f"warning [{e['rule']}]: {e['message']}")
        elif kind == "restarting":
            say(f"{e['reason']}: full rebuild and relaunch")


#: How the banner describes the runtime's mode (events.schema.json, app-started).
_RUNTIME_MODES = {
    "linked": "linked (hotline::call safe points and on_patch available)",
    "injected": "injected (the app does not depend on it: no hotline::call safe points)",
}

_json_lock = threading.Lock()


def _json_printer(e: Event) -> None:
    """One event per line: events come from several threads, so each line is written whole."""
    line = json.dumps(e) + "\n"
    with _json_lock:
        sys.stdout.write(line)
        sys.stdout.flush()


def _classify(changes: set[tuple[object, str]]) -> str | None:
    """'restart' for manifest/build-script edits, 'patch' for Rust sources, else None."""
    names = {Path(p).name for _, p in changes}
    if names & set(RESTART_FILES):
        return "restart"
    if any(n.endswith(".rs") for n in names):
        return "patch"
    return None


def _stop_on_sigterm(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt  # `kill` stops the app too, as Ctrl-C does


def run(args: argparse.Namespace) -> int:
    from watchfiles import watch

    signal.signal(signal.SIGTERM, _stop_on_sigterm)

    printer = _json_printer if args.json else HumanPrinter()
    try:
        session = Session(
            Path(args.dir),
            printer,
            bin_name=args.bin,
            app_args=args.app_args,
            capture_output=args.json,
            entry_jumps=not args.no_entry_jumps,
        )
    except HotlineError as e:
        print(f"hotline: {e}", file=sys.stderr)
        return 1

    def only_sources(_change: object, path: str) -> bool:
        p = Path(path)
        return "target" not in p.parts and (p.suffix == ".rs" or p.name in RESTART_FILES)

    try:  # from here on, however hotline ends, the app it launched ends with it
        session.start()
        for changes in watch(session.workspace_root, watch_filter=only_sources, debounce=50, step=1):
            what = _classify(changes)
            try:
                if what == "restart":
                    printer({"event": "restarting", "reason": "Cargo.toml or build.rs changed"})
                    session.restart()
                elif what == "patch" and not session.app_alive:
                    printer({"event": "restarting", "reason": "the app is not running"})
                    session.restart()
                elif what == "patch":
                    session.patch([Path(p) for _, p in changes])
            except HotlineError as e:
                print(f"hotline: {e}", file=sys.stderr)
    except HotlineError as e:
        print(f"hotline: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    finally:
        session.stop()
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="hotline", description="Save-to-patch hot reloading for Rust.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="build, launch, watch and patch an app")
    p_run.add_argument("dir", nargs="?", default=".", help="the app's crate directory")
    p_run.add_argument("--bin", help="which binary target to run, if the package has several")
    p_run.add_argument("--json", action="store_true", help="print one JSON event per line")
    p_run.add_argument(
        "--no-entry-jumps",
        action="store_true",
        help="strict safe points: old code reaches new code only through hotline::call",
    )
    p_run.add_argument("app_args", nargs="*", help="arguments for the app (after --)")
    sub.add_parser("lsp", help="start the language server on stdio")
    argv = sys.argv[1:] if argv is None else argv
    # Everything after `--` is the app's, even nothing (argparse rejects a bare trailing `--`).
    app_args = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    if args.command == "run":
        args.app_args = [*args.app_args, *app_args]
    if args.command == "lsp":
        from hotline.lsp.server import main as lsp_main

        lsp_main()
        return
    sys.exit(run(args))
