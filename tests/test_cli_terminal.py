"""`hotline run` as users of `flutter run` and `dx serve` expect it (issue 15): keys in a real
terminal (tmux: r restarts, p shows the last patch, q quits), a first build that waits for a
fix, colours only on a terminal, the editor settings as flags, `--version`, `--help`, and
never a Python traceback. The app is tests/apps/cli_ticker (std only: builds in a second);
each test builds its own copy."""

from __future__ import annotations

import importlib.metadata
import io
import itertools
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import edit_file, gone
from hotline.cli.args import parse_args
from hotline.cli.console import Console
from hotline.cli.printer import HumanPrinter
from hotline.engine.session import Session
from hotline.examples import copy_app

ESC = "\x1b["
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_sessions = itertools.count()


def ticker(tmp_path: Path) -> Path:
    """A fresh copy of tests/apps/cli_ticker."""
    return copy_app("cli_ticker", tmp_path)


@pytest.fixture(scope="module")
def tmux_socket() -> Iterator[str]:
    """A tmux server of this module's own, so no other tmux session is touched."""
    name = f"hotline-cli-test-{os.getpid()}"
    yield name
    subprocess.run(["tmux", "-L", name, "kill-server"], capture_output=True)
    (Path(os.environ.get("TMUX_TMPDIR", "/tmp")) / f"tmux-{os.getuid()}" / name).unlink(missing_ok=True)


class Terminal:
    """`hotline run` in a tmux pane: a real terminal on its stdin and stderr. Everything the
    pane's programs write is logged as it comes (tmux pipe-pane, escapes included); after
    hotline exits the pane's shell prints `hotline-exit=<status>` and the terminal's mode."""

    def __init__(
        self, socket: str, crate: Path, target_dir: Path, args: list[str], env: dict[str, str]
    ) -> None:
        self.socket = socket
        self.name = f"run{next(_sessions)}"
        self.log = crate.parent / f"{self.name}.log"
        self.log.write_bytes(b"")
        variables = {"HOTLINE_TARGET_DIR": str(target_dir), **env}
        command = shlex.join(
            ["env", "-u", "NO_COLOR", *(f"{k}={v}" for k, v in variables.items()), sys.executable]
            + ["-m", "hotline", "run", str(crate), *args]
        )
        # The shell waits for Enter, so the log misses nothing; then runs hotline and reports.
        # It survives Ctrl-C (a handler, which hotline does not inherit, unlike an ignored signal).
        script = f"trap true INT; read go; {command}; echo hotline-exit=$?; stty -a; sleep 600"
        self._tmux("new-session", "-d", "-s", self.name, "-x", "200", "-y", "50", "sh", "-c", script)
        self._tmux("pipe-pane", "-t", self.name, "-o", f"cat >> {shlex.quote(str(self.log))}")
        self.press("Enter")

    def _tmux(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=True
        ).stdout

    def press(self, key: str) -> None:
        self._tmux("send-keys", "-t", self.name, key)

    def raw(self) -> str:
        return self.log.read_bytes().decode(errors="replace")

    def lines(self) -> list[str]:
        """The pane's lines without colours; a `\\r` progress line counts as its last state."""
        text = _ANSI.sub("", self.raw()).replace("\r\n", "\n")
        return [line.rsplit("\r", 1)[-1] for line in text.split("\n")]

    def wait(self, pattern: str, after: int = 0, timeout: float = 120.0) -> tuple[int, re.Match[str]]:
        """The first line from `after` on that matches `pattern`: (its index, the match)."""
        deadline = time.monotonic() + timeout
        while True:
            for i, line in enumerate(self.lines()[after:], after):
                found = re.search(pattern, line)
                if found:
                    return i, found
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} not seen in {timeout}s; last lines: {self.lines()[-12:]}")
            time.sleep(0.05)

    def close(self) -> None:
        """Ctrl-C, then the pane goes: no hotline or app of this test outlives it."""
        if not any(line.startswith("hotline-exit=") for line in self.lines()):
            self.press("C-c")
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not any(
                line.startswith("hotline-exit=") for line in self.lines()
            ):
                time.sleep(0.1)
        subprocess.run(["tmux", "-L", self.socket, "kill-session", "-t", self.name], capture_output=True)


@pytest.fixture
def terminal(tmux_socket: str, tmp_path: Path) -> Iterator:
    """Starts `hotline run` on a crate in a tmux pane; closes every pane at the end. Each test
    builds into its own target directory: cargo would take a copy elsewhere for fresh (its
    hash of a path package is relative to the workspace) and the capture would be stale."""
    opened: list[Terminal] = []

    def start(crate: Path, args: list[str] | None = None, env: dict[str, str] | None = None) -> Terminal:
        opened.append(Terminal(tmux_socket, crate, tmp_path / "target", args or [], env or {}))
        return opened[-1]

    yield start
    for term in opened:
        term.close()


def _app_started(term: Terminal, after: int = 0) -> tuple[int, int]:
    """(line index, pid) of the next `app started` line."""
    i, found = term.wait(r"^\[hotline\] app started \(pid (\d+)\)", after)
    return i, int(found[1])


def _mode_is_cooked(stty: str) -> bool:
    """`stty -a` says line editing and echo are on, as a shell leaves the terminal."""
    return re.search(r"(?<!-)\bicanon\b", stty) is not None and re.search(r"(?<!-)\becho\b", stty) is not None


# -- keys in a real terminal ----------------------------------------------------------------


def test_r_restarts_the_app_as_a_new_process_whose_static_counter_starts_over(tmp_path, terminal):
    term = terminal(ticker(tmp_path))
    start, first = _app_started(term)
    term.wait(r"^hello tick=5 ", start)
    term.wait(r"^\[hotline\] r restart · p last patch · q quit$", start)
    term.press("r")
    asked, _ = term.wait(r"^\[hotline\] restart requested \(r\): full rebuild and relaunch$", start)
    _, second = _app_started(term, asked)
    assert second != first
    assert gone(first), f"the first app (pid {first}) still runs"
    # TICKS is a static: only a new process counts from 1 (the app writes to the terminal
    # itself, so its first line may come before hotline's `app started`)
    term.wait(r"^hello tick=1 ", asked)
    os.kill(second, 0)


def test_p_prints_the_last_patch_with_its_function_and_machine_code(tmp_path, terminal):
    crate = ticker(tmp_path)
    term = terminal(crate)
    start, _ = _app_started(term)
    term.wait(r"^hello tick=", start)
    edit_file(crate / "src" / "main.rs", '    "hello"\n', '    "howdy"\n')
    patched, _ = term.wait(r"^\[hotline\] patched in \d+ms .*1 function: cli_ticker::greeting$", start)
    term.wait(r"^howdy tick=", patched)
    term.press("p")
    shown, _ = term.wait(
        r"^\[hotline\] last patch, #1: patched in \d+ms .*1 function: cli_ticker::greeting$", patched
    )
    listing, _ = term.wait(r"^\[hotline\] machine code of cli_ticker::greeting:$", shown)
    term.wait(r"^\+\+\+ cli_ticker::greeting \(patched\)$", listing)


def test_h_lists_the_keys(tmp_path, terminal):
    term = terminal(ticker(tmp_path))
    start, _ = _app_started(term)
    term.press("h")
    listed, _ = term.wait(r"^\[hotline\] r  restart: full rebuild and relaunch", start)
    assert [line.split("  ")[0] for line in term.lines()[listed : listed + 4]] == [
        "[hotline] r",
        "[hotline] p",
        "[hotline] q",
        "[hotline] h",
    ], term.lines()[listed : listed + 4]


def test_q_quits_with_status_0_stops_the_app_and_gives_the_terminal_its_mode_back(tmp_path, terminal):
    term = terminal(ticker(tmp_path))
    start, pid = _app_started(term)
    term.wait(r"^hello tick=", start)
    term.press("q")
    ended, found = term.wait(r"^hotline-exit=(\d+)$", start)
    assert found[1] == "0"
    assert gone(pid), f"the app (pid {pid}) outlived hotline run"
    term.wait(r"\bicanon\b", ended)  # stty -a has printed its local modes
    assert _mode_is_cooked("\n".join(term.lines()[ended:])), term.lines()[ended:]


def test_kill_stops_the_app_and_gives_the_terminal_its_mode_back(tmp_path, terminal):
    term = terminal(ticker(tmp_path))
    start, pid = _app_started(term)
    term.wait(r"^hello tick=", start)
    engine = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])  # the app's parent
    os.kill(engine, signal.SIGTERM)
    ended, found = term.wait(r"^hotline-exit=(\d+)$", start)
    assert found[1] == "0"
    assert gone(pid), f"the app (pid {pid}) outlived hotline run"
    term.wait(r"\bicanon\b", ended)
    assert _mode_is_cooked("\n".join(term.lines()[ended:])), term.lines()[ended:]
    assert "Traceback" not in term.raw()


# -- colours ----------------------------------------------------------------------------------


def test_hotline_lines_are_coloured_in_a_terminal(tmp_path, terminal):
    crate = ticker(tmp_path)
    term = terminal(crate)
    start, pid = _app_started(term)
    term.wait(r"^hello tick=", start)
    edit_file(crate / "src" / "main.rs", '    "hello"\n', '    "howdy"\n')
    term.wait(r"^\[hotline\] patched in ", start)
    raw = term.raw()
    assert f"{ESC}36m[hotline]{ESC}0m app started (pid {pid})" in raw  # a cyan prefix
    assert re.search(rf"{re.escape(ESC)}32mpatched in \d+ms{re.escape(ESC)}0m", raw)  # green


def test_no_color_keeps_a_terminal_free_of_colour_codes(tmp_path, terminal):
    crate = ticker(tmp_path)
    edit_file(crate / "src" / "main.rs", '    "hello"\n', '    "hello" +\n')  # a compile error: rustc colours
    term = terminal(crate, env={"NO_COLOR": "1"})
    term.wait(r"^\[hotline\] waiting for a change to retry…$")
    edit_file(crate / "src" / "main.rs", '    "hello" +\n', '    "hello"\n')
    start, _ = _app_started(term)
    term.wait(r"^hello tick=", start)
    assert "error" in term.raw() and "\x1b" not in term.raw()


def test_in_a_pipe_hotline_lines_are_plain_and_no_key_hint_is_shown(tmp_path, hotline_run):
    crate = ticker(tmp_path)
    main = crate / "src" / "main.rs"
    run = hotline_run(crate, json_events=False)
    run.until_stderr(lambda s: s.startswith("[hotline] app started (pid "))
    edit_file(main, '    "hello"\n', '    "hello" +\n')  # rustc renders its errors in colour
    run.until_stderr(lambda s: s.startswith("[hotline] compile error (1 error)"))
    edit_file(main, '    "hello" +\n', '    "howdy"\n')
    run.until_stderr(lambda s: s.startswith("[hotline] patched in "))
    assert any(s.startswith("error") for s in run.stderr), run.stderr
    assert not [s for s in run.stderr if "\x1b" in s]
    assert not [s for s in run.stderr if "q quit" in s]


# -- the first build ---------------------------------------------------------------------------


def test_a_compile_error_in_the_first_build_waits_and_launches_after_the_fix(tmp_path, hotline_run):
    crate = ticker(tmp_path)
    main = crate / "src" / "main.rs"
    edit_file(main, '    "hello"\n', '    "hello" +\n')
    run = hotline_run(crate, json_events=False)
    waiting = run.until_stderr(lambda s: s == "[hotline] waiting for a change to retry…")
    assert run.stderr.index(waiting) > run.stderr.index("hotline: the fat build failed:")
    assert run.proc.poll() is None
    edit_file(main, '    "hello" +\n', '    "hello"\n')
    run.until_stderr(lambda s: s.startswith("[hotline] app started (pid "))
    deadline = time.monotonic() + 60
    while not [s for s in run.stdout if s.startswith("hello tick=")]:
        assert time.monotonic() < deadline, run.stdout[-5:]
        run.drain()
        time.sleep(0.05)


def test_bin_nope_prints_one_hotline_line_listing_the_binaries_and_exits_1(tmp_path):
    crate = copy_app("twobins", tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "hotline", "run", str(crate), "--bin", "nope"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        f"hotline: no binary target named nope in {crate / 'Cargo.toml'}: it has alpha, beta"
    ], proc.stderr


# -- flags ----------------------------------------------------------------------------------------


def test_features_and_profile_reach_the_fat_build(tmp_path, hotline_run):
    crate = ticker(tmp_path)
    run = hotline_run(crate, ["--features", "loud", "--profile", "quick"])
    run.until(lambda e: e["event"] == "app-output" and e["line"].startswith("hello tick="))
    assert run.events[-1]["line"].endswith(" mode=loud"), run.events[-1]
    assert (tmp_path / "target" / "quick" / "cli_ticker").is_file()


def test_release_reaches_the_engine_and_its_refusal_is_printed_without_a_traceback(tmp_path, hotline_run):
    """The engine does not patch a build without debug info: `--release` gets its reason, at
    Cargo.toml, where a save may fix it."""
    run = hotline_run(ticker(tmp_path), ["--release"], json_events=False)
    run.until_stderr(lambda s: s == "[hotline] waiting for a change to retry…")
    failed = run.stderr.index("hotline: the fat build failed:")
    assert run.stderr[failed + 1].startswith("error[HL1011]: the `release` profile builds cli_ticker"), (
        run.stderr
    )
    assert (tmp_path / "target" / "release").is_dir()  # cargo was asked for the release profile
    assert not [s for s in run.stderr if "Traceback" in s]


def test_features_may_be_repeated_or_comma_separated_and_release_means_profile_release():
    args = parse_args(["run", "app", "--features", "a,b", "--features", "c", "--release"])
    assert args.features == ["a", "b", "c"] and args.profile == "release"
    args = parse_args(["run", "--allow-layout-change", "app::A", "--allow-layout-change", "app::B"])
    assert args.dir == "." and args.allow_layout_change == ["app::A", "app::B"]


def test_allow_layout_change_patches_a_layout_change_of_that_type_only(tmp_path, hotline_run):
    crate = ticker(tmp_path)
    main = crate / "src" / "main.rs"
    edit_file(main, 'fn greeting() -> &\'static str {\n    "hello"\n}', _GREETING_WITH_TYPES)
    run = hotline_run(crate, ["--allow-layout-change", "cli_ticker::Word"])
    run.until(lambda e: e["event"] == "app-output")
    run.watching()
    done = ("patched", "patch-refused", "compile-error", "no-change")
    edit_file(
        main,
        "struct Other {\n",
        "struct Other {\n    extra: u64,\n",
        "Other { text: ",
        "Other { extra: 0, text: ",
    )
    refused = run.until(lambda e: e["event"] in done)
    assert refused["event"] == "patch-refused" and refused["rule"] == "HL1002", refused
    edit_file(
        main,
        *(
            "Other { extra: 0, text: ",
            "Other { text: ",
            "struct Other {\n    extra: u64,\n",
            "struct Other {\n",
        ),
        *("struct Word {\n", "struct Word {\n    extra: u64,\n", "Word { text: ", "Word { extra: 0, text: "),
    )
    outcome = run.until(lambda e: e["event"] in done)
    assert outcome["event"] == "patched", outcome


#: greeting, with two types whose layouts the test changes: only Word's change is allowed.
_GREETING_WITH_TYPES = """struct Word {
    text: &'static str,
}

struct Other {
    text: &'static str,
}

fn greeting() -> &'static str {
    let word = Word { text: "hello" };
    let other = Other { text: "" };
    std::hint::black_box(&other).text;
    std::hint::black_box(&word).text
}"""


# -- what the lines say ------------------------------------------------------------------------


def test_one_edited_and_one_relinked_function_are_each_called_1_function(tmp_path, hotline_run):
    crate = ticker(tmp_path)
    run = hotline_run(crate, json_events=False)
    run.until_stderr(lambda s: s.startswith("[hotline] app started (pid "))
    # A line inserted in greeting moves tick's panic location below it: tick is relinked.
    edit_file(crate / "src" / "main.rs", '    "hello"\n', '    let text = "howdy";\n    text\n')
    line = run.until_stderr(lambda s: "patched in" in s or "refused" in s or "error" in s)
    assert line.endswith(
        "   1 function: cli_ticker::greeting; 1 function relinked (a constant or line it uses moved)"
    ), line


def test_a_new_hotline_run_says_it_re_attached_to_the_app_a_killed_one_left_running(tmp_path, hotline_run):
    crate = ticker(tmp_path)
    first = hotline_run(crate, json_events=False)
    started = first.until_stderr(lambda s: s.startswith("[hotline] app started (pid "))
    pid = int(started.split("(pid ")[1].split(")")[0])
    edit_file(crate / "src" / "main.rs", '    "hello"\n', '    "howdy"\n')
    first.until_stderr(lambda s: s.startswith("[hotline] patched in "))
    first.proc.kill()  # hotline dies right after reporting the patch; the app runs on
    first.proc.wait(timeout=10)
    second = hotline_run(crate, json_events=False)
    line = second.until_stderr(lambda s: s.startswith("[hotline] re-attached"))
    assert line == (
        f"[hotline] re-attached to the running app (pid {pid}, 1 patch applied so far), runtime injected "
        "(the app does not depend on it: no hotline::call safe points), threads stopped quietly (ptrace); "
        "watching for changes"  # the suite needs ptrace (test_debuggable attaches gdb)
    )
    second.stop()
    assert gone(pid), f"the app (pid {pid}) outlived the second hotline run"


def _printed(*events: dict) -> str:
    out = io.StringIO()  # not a terminal: plain text
    printer = HumanPrinter(Console(out), lambda: True)
    for event in events:
        printer(event)
    return out.getvalue()


def test_engine_error_app_adopted_and_orphan_reason_are_printed_as_documented():
    assert _printed(
        {"event": "engine-error", "message": "patching failed: KeyError: 'x'", "log": "/t/engine.log"}
    ) == (
        "[hotline] internal error: patching failed: KeyError: 'x' (details: /t/engine.log); "
        "the app keeps running its last good code\n"
    )
    adopted = {
        "event": "app-adopted",
        "pid": 42,
        "executable": "/t/run/app-1",
        "runtime": "injected",
        "seq": 1,
    }
    assert _printed(adopted) == (
        "[hotline] re-attached to the running app (pid 42, 1 patch applied so far), runtime injected "
        "(the app does not depend on it: no hotline::call safe points); watching for changes\n"
    )
    assert "(pid 42, 3 patches applied so far)" in _printed({**adopted, "seq": 3})
    orphan = {"event": "orphan-stopped", "pid": 7, "reason": "Cargo.toml changed since it was built"}
    assert _printed(orphan) == (
        "[hotline] stopped the app (pid 7) an earlier hotline left running unattached: "
        "Cargo.toml changed since it was built\n"
    )


def test_an_unexpected_exception_in_the_run_loop_prints_one_line_and_the_app_keeps_running(
    tmp_path, hotline_run, monkeypatch
):
    """A bug on hotline run's own code path (here: Session.patch raising, injected through
    sitecustomize) is one `hotline: internal error:` line, its traceback in a log file."""
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(
        "from hotline.engine.session import Session\n\n\n"
        "def broken(self, changed=None):\n"
        "    raise RuntimeError('boom')\n\n\n"
        "Session.patch = broken\n"
    )
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(inject), *sys.path]))
    crate = ticker(tmp_path)
    run = hotline_run(crate, json_events=False)
    started = run.until_stderr(lambda s: s.startswith("[hotline] app started (pid "))
    pid = int(started.split("(pid ")[1].split(")")[0])
    mark = len(run.stderr)
    edit_file(crate / "src" / "main.rs", '    "hello"\n', '    "howdy"\n')
    line = run.until_stderr(lambda s: s.startswith("hotline:"), after=mark)
    assert re.fullmatch(r"hotline: internal error: RuntimeError: boom \(details: /\S+\.log\)", line), line
    assert "RuntimeError: boom" in Path(line.split("(details: ")[1].rstrip(")")).read_text()
    time.sleep(0.5)
    os.kill(pid, 0)  # the app keeps running
    assert run.proc.poll() is None  # and so does hotline
    run.stop()
    assert run.proc.returncode == 0
    assert [s for s in run.stderr if s.startswith("hotline:")] == [line]
    assert not [s for s in run.stderr if "Traceback" in s]


# -- --version and --help ----------------------------------------------------------------------


def test_version_prints_hotline_and_the_installed_version():
    out = subprocess.run([sys.executable, "-m", "hotline", "--version"], capture_output=True, text=True)
    assert out.returncode == 0
    assert out.stdout == f"hotline {importlib.metadata.version('hotline-reload')}\n"


def test_run_help_says_dir_defaults_to_the_current_directory_and_the_app_needs_nothing():
    out = subprocess.run(
        [sys.executable, "-m", "hotline", "run", "--help"],
        capture_output=True,
        text=True,
        env=os.environ | {"COLUMNS": "200"},
    )
    assert out.returncode == 0
    text = " ".join(out.stdout.split())
    assert "the app's crate directory (default: ., the current directory)" in text
    assert "The app needs nothing: no dependency and no code change." in text
    assert "Optionally make the app depend on the runtime crate (package hotline-runtime)" in text
    for flag in ("--release", "--profile NAME", "--features LIST", "--allow-layout-change TYPE"):
        assert flag in text


def test_on_hotlines_terminal_the_app_runs_none_of_its_code_before_app_started_is_out(tmp_path):
    """With its output on hotline's terminal (`hotline run`: capture_output=False), the app
    starts once `app-started` is handled, so the lines printed then come before a
    full-screen app's first frame (printed after it, they scroll its top row away). Without
    a gate the app is always running by then: Popen returns after its exec."""
    crate = ticker(tmp_path)
    announced: dict[str, str] = {}

    def on_event(e: dict) -> None:
        if e["event"] == "app-started":
            announced["exe"] = os.readlink(f"/proc/{e['pid']}/exe")

    session = Session(crate, on_event, target_dir=tmp_path / "target", capture_output=False)
    try:
        pid = session.start()
        executable = os.readlink(f"/proc/{pid}/exe")
    finally:
        session.stop()
    assert Path(executable).name.startswith("cli_ticker")  # the same process runs the app now
    assert not Path(announced["exe"]).name.startswith("cli_ticker"), announced
