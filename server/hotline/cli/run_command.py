"""`hotline run`: the session, the signals that end it, the key reader and the watcher thread."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from hotline.cli.console import Console
from hotline.cli.keys import Keys
from hotline.cli.printer import HumanPrinter, json_printer
from hotline.cli.runner import Runner
from hotline.engine.errors import HotlineError
from hotline.engine.session import Session


def _stop_on_signal(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt  # `kill`, or the terminal closing, stops the app too, as Ctrl-C does


class _HandOver(Exception):
    """Another engine (an editor's "Take over") asked for the app: SIGUSR1."""


def _hand_over_on_signal(_signum: int, _frame: object) -> None:
    raise _HandOver


def run(args: argparse.Namespace) -> int:
    """`hotline run`: exit status 0 after q, Ctrl-C or `kill`; 1 when the app cannot be run."""
    # SIGINT too: a process started in the background of a non-interactive shell (CI) inherits
    # it ignored, and Python then leaves Ctrl-C ignored.
    signal.signal(signal.SIGINT, _stop_on_signal)
    signal.signal(signal.SIGTERM, _stop_on_signal)
    signal.signal(signal.SIGHUP, _stop_on_signal)
    signal.signal(signal.SIGUSR1, _hand_over_on_signal)
    console = Console(sys.stderr)
    runner = Runner(console, json_printer)
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
