"""Patched code is debuggable (issue 16), checked with the real tools on live patched apps:
std's RUST_BACKTRACE=1 panic backtraces, gdb attached in batch mode, the perf JIT map, and
the debug-info channel message. gdb is required: scripts/setup.sh installs it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from hotline.engine import schemas
from hotline.engine.analyse.demangle import demangle
from hotline.engine.link.debug_elf import STD_BIAS
from hotline.engine.link.first_call_stubs import PREAMBLE

WORK = "fn work(n: u32) -> u32 {\n    n + 1\n}"
GDB_TIMEOUT = 60


@pytest.fixture(autouse=True)
def backtraces(monkeypatch):
    monkeypatch.setenv("RUST_BACKTRACE", "1")


def gdb() -> str:
    path = shutil.which("gdb")
    assert path, "gdb is not installed: run scripts/setup.sh (apt package gdb)"
    scope = Path("/proc/sys/kernel/yama/ptrace_scope")
    if scope.exists():
        assert scope.read_text().strip() != "3", "ptrace is disabled (yama ptrace_scope 3): gdb cannot attach"
    return path


def run_gdb(pid: int, *commands: str) -> str:
    args = [gdb(), "-p", str(pid), "-batch", "-nx", "-ex", "set pagination off", "-ex", "set width 0"]
    for c in commands:
        args += ["-ex", c]
    out = subprocess.run(args, capture_output=True, text=True, timeout=GDB_TIMEOUT)
    return out.stdout + out.stderr


def debug_info_delivered(app) -> None:
    """Waits until every applied patch's debug ELF is written and registered."""
    writer = app.session.running.debug
    assert writer is not None and writer.wait_idle(30), "debug info not delivered in 30 s"
    assert not writer.errors, writer.errors


def stderr_lines(app) -> list[str]:
    with app._cv:
        return [e["line"] for e in app.events if e["event"] == "app-output" and e["stream"] == "stderr"]


def panic_backtrace(app, message: str, after: int, timeout: float = 15.0) -> list[str]:
    """The backtrace std printed for the first panic with `message` among stderr lines `after`on."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = stderr_lines(app)[after:]
        for i, line in enumerate(lines):
            if line == message or line.startswith(message):
                end = next(
                    (j for j in range(i, len(lines)) if lines[j].startswith("note: Some details")), None
                )
                if end is not None:
                    return lines[i : end + 1]
        time.sleep(0.1)
    raise AssertionError(f"no backtrace for {message!r} in {timeout}s: {stderr_lines(app)[-20:]}")


def frames(backtrace: list[str]) -> list[tuple[str, str | None]]:
    """(function, `at` location or None) for each numbered frame."""
    out: list[tuple[str, str | None]] = []
    for line in backtrace:
        m = re.match(r"\s+\d+: (.*)$", line)
        if m:
            out.append((m.group(1), None))
        elif line.strip().startswith("at ") and out:
            out[-1] = (out[-1][0], line.strip()[3:])
    return out


def line_of(app, text: str) -> int:
    source = (app.crate / "src/main.rs").read_text().splitlines()
    return next(i + 1 for i, line in enumerate(source) if text in line)


def assert_symbolized(app, backtrace: list[str], patched: list[str]) -> None:
    named = frames(backtrace)
    assert named, backtrace
    assert not [f for f in named if "<unknown>" in f[0]], "\n".join(backtrace)
    for function in patched:
        found = [at for name, at in named if name == function]
        assert found, f"{function} not in\n" + "\n".join(backtrace)
        assert found[0] and re.match(r"\./src/main\.rs:\d+:\d+$", found[0]), found


def newest_copy(app, name: str) -> tuple[int, int]:
    """(address, size) of the newest patched copy of the function demangled as `name`."""
    prior = app.session.running.prior
    symbol = next(s for s in prior.functions if demangle(s) == name)
    address = prior.functions[symbol][-1]
    return address, prior.sizes[address]


def test_panic_backtraces_name_added_and_edited_functions_with_file_and_line(live_app):
    app = live_app("debuggable")
    app.wait_line(lambda line: line.startswith("tick"), timeout=30)
    app.edit(
        WORK,
        "fn work(n: u32) -> u32 {\n    added(n)\n}\n\n#[inline(never)]\nfn added(n: u32) -> u32 {\n"
        '    if n % 10 == 0 {\n        panic!("boom in added {n}");\n    }\n    n + 2\n}',
    )
    app.patch()
    debug_info_delivered(app)
    mark = len(stderr_lines(app))
    backtrace = panic_backtrace(app, "boom in added", mark)
    assert_symbolized(app, backtrace, ["debuggable::added", "debuggable::work", "debuggable::tick"])
    at = dict(frames(backtrace))["debuggable::added"]
    assert at.startswith(f"./src/main.rs:{line_of(app, 'boom in added')}:"), at

    # A second patch edits a function the first one did not touch; std read its module
    # list at the first backtrace, and still finds this patch's code.
    app.edit(
        "    work(n) * 2", '    if n % 10 == 5 {\n        panic!("boom in tick {n}");\n    }\n    work(n) * 3'
    )
    app.patch()
    debug_info_delivered(app)
    mark = len(stderr_lines(app))
    backtrace = panic_backtrace(app, "boom in tick", mark)
    assert_symbolized(app, backtrace, ["debuggable::tick"])
    at = dict(frames(backtrace))["debuggable::tick"]
    assert at.startswith(f"./src/main.rs:{line_of(app, 'boom in tick')}:"), at
    backtrace = panic_backtrace(app, "boom in added", mark)
    assert_symbolized(app, backtrace, ["debuggable::added", "debuggable::work", "debuggable::tick"])


def gdb_sections(out: str) -> dict[str, str]:
    """gdb -batch does not echo commands: `echo @@name\\n` before each one marks its output."""
    return {name: text.strip() for name, text in re.findall(r"^@@(\w+)\n(.*?)(?=^@@|\Z)", out, re.M | re.S)}


def test_gdb_breaks_in_the_patched_copy_names_every_frame_and_detaches(live_app):
    gdb()
    app = live_app("debuggable")
    app.wait_line(lambda line: line.startswith("tick"), timeout=30)
    old_lines = range(line_of(app, "fn work"), line_of(app, "fn work") + 3)
    # Three lines above it: the new copy's lines are none of the old copy's.
    app.edit(WORK, "// moved\n// down\n// three\nfn work(n: u32) -> u32 {\n    let m = n + 7;\n    m\n}")
    body = line_of(app, "let m = n + 7")
    new_lines = {line_of(app, "fn work"), body, body + 1}
    assert not new_lines & set(old_lines)
    app.patch()
    debug_info_delivered(app)
    address, size = newest_copy(app, "debuggable::work")
    pid = app.session.running.proc.pid
    out = run_gdb(
        pid,
        "break debuggable::work",
        "continue",
        'printf "PC=%lu\\n", $pc',
        "echo @@bt\\n",
        "bt",
        "echo @@line\\n",
        "info line *$pc",
        "echo @@symbol\\n",
        "info symbol $pc",
        "echo @@copy\\n",
        f"info symbol {address}",
        "echo @@end\\n",
        "delete",
        "detach",
    )
    pc = int(re.search(r"PC=(\d+)", out).group(1))
    assert address <= pc < address + size, f"stopped at {pc:#x}, not in the patched copy {address:#x}\n{out}"
    sections = gdb_sections(out)
    stack = [line for line in sections["bt"].splitlines() if re.match(r"#\d+ ", line)]
    assert stack and re.match(r"#0\s+(0x[0-9a-f]+ in )?debuggable::work ", stack[0]), out
    assert not [line for line in stack if "??" in line], out
    assert any("debuggable::tick" in line and "src/main.rs:" in line for line in stack), out
    assert any("debuggable::main" in line for line in stack), out
    # The newest copy's own line table: the line at the pc is one of the edited function's
    # new lines, and its code starts inside the copy.
    m = re.match(r'Line (\d+) of "src/main.rs" starts at address (0x[0-9a-f]+)', sections["line"])
    assert m, out
    assert int(m.group(1)) in new_lines, (new_lines, out)
    assert address <= int(m.group(2), 16) < address + size, out
    # Its symbol: the pc and the copy's first byte are named as the edited function.
    # (in the patch's debug ELF, which gdb reads from memory: the JIT interface)
    in_patch = r"debuggable::work(::h[0-9a-f]{16})?%s in section \.text of <in-memory@"
    assert re.match(in_patch % r"( \+ \d+)?", sections["symbol"]), out
    assert re.match(in_patch % "", sections["copy"]), out

    # Detached: the app runs on and takes the next patch.
    mark = app.mark()
    app.wait_line(lambda line: line.startswith("tick"), after=mark, timeout=10)
    app.edit("let m = n + 7;", "let m = n + 9;")
    app.patch()
    line = app.wait_line(lambda line: line.startswith("tick"), after=app.mark(), timeout=10)
    n, v = (int(x.split("=")[1]) for x in line.split()[1:])
    assert v == (n + 9) * 2, line
    assert app.session.app_alive


def test_debug_info_stays_right_over_twenty_patches_and_a_revert(live_app):
    gdb()
    app = live_app("debuggable")
    app.wait_line(lambda line: line.startswith("tick"), timeout=30)
    app.edit(
        WORK,
        'fn work(n: u32) -> u32 {\n    if n % 10 == 0 {\n        panic!("first {n}");\n    }\n    n + 1\n}',
    )
    app.patch()
    debug_info_delivered(app)
    assert_symbolized(app, panic_backtrace(app, "first", 0), ["debuggable::work"])
    body = '    if n % 10 == 0 {\n        panic!("first {n}");\n    }\n    n + 1'
    for k in range(2, 21):
        new = (
            f"    n + {k}"
            if k < 20
            else f'    if n % 10 == 0 {{\n        panic!("twentieth {{n}}");\n    }}\n    n + {k}'
        )
        app.edit(body, new)
        body = new
        app.patch()
        debug_info_delivered(app)
        # Every patch's files describe its own copy (the ones std and gdb read): its code, after
        # the first-call preamble callers enter at (receipts), which no line describes.
        address, size = newest_copy(app, "debuggable::work")
        address += PREAMBLE
        folder = app.session.running.debug.dir
        for elf, at in (
            (folder / f"patch-{k}.debug", address),
            (folder / f"{address - address % (64 << 10):x}.debug", address - STD_BIAS),
        ):
            out = subprocess.run(
                ["addr2line", "-f", "-C", "-e", str(elf), hex(at)], capture_output=True, text=True, timeout=30
            )
            assert out.stdout.splitlines()[0] == "debuggable::work", (k, elf, out.stdout)
            assert re.search(r"src/main\.rs:\d+", out.stdout), (k, out.stdout)
    mark = len(stderr_lines(app))
    backtrace = panic_backtrace(app, "twentieth", mark)
    assert_symbolized(app, backtrace, ["debuggable::work", "debuggable::tick"])
    assert dict(frames(backtrace))["debuggable::work"].startswith(
        f"./src/main.rs:{line_of(app, 'twentieth')}:"
    )

    # Back to the original body: a 21st copy, and gdb resolves the name to it.
    app.edit(body, "    n + 1")
    app.patch()
    debug_info_delivered(app)
    address, size = newest_copy(app, "debuggable::work")
    out = run_gdb(
        app.session.running.proc.pid,
        "break debuggable::work",
        "continue",
        'printf "PC=%lu\\n", $pc',
        "bt 3",
        "delete",
        "detach",
    )
    pc = int(re.search(r"PC=(\d+)", out).group(1))
    assert address <= pc < address + size, f"{pc:#x} is not in the newest copy at {address:#x}\n{out}"
    assert "?? " not in out, out
    assert app.session.app_alive


def test_perf_map_lists_every_patched_function_with_address_and_size(live_app):
    app = live_app("debuggable")
    app.wait_line(lambda line: line.startswith("tick"), timeout=30)
    app.edit(
        WORK,
        "fn work(n: u32) -> u32 {\n    helper(n) + 1\n}\n\n#[inline(never)]\nfn helper(n: u32) -> u32 {\n    n * 3\n}",
    )
    app.patch()
    app.edit("    n * 3", "    n * 4")
    app.patch()
    debug_info_delivered(app)
    prior = app.session.running.prior
    pid = app.session.running.proc.pid
    entries = set()
    for line in Path(f"/tmp/perf-{pid}.map").read_text().splitlines():
        start, size, name = line.split(" ", 2)
        entries.add((int(start, 16), int(size, 16), name))
    expected = {
        (address, prior.sizes[address], demangle(symbol))
        for symbol, addresses in prior.functions.items()
        for address in addresses
        if prior.sizes[address]
    }
    assert expected and expected <= entries, sorted(expected - entries)[:5]
    names = {name for _, _, name in entries}
    assert {"debuggable::work", "debuggable::helper"} <= names
    assert len([e for e in entries if e[2] == "debuggable::helper"]) == 2  # both copies


def test_debug_info_messages_are_checked_like_patches(live_app):
    app = live_app("debuggable")
    app.wait_line(lambda line: line.startswith("tick"), timeout=30)
    app.edit(WORK, "fn work(n: u32) -> u32 {\n    n + 5\n}")
    app.patch()
    debug_info_delivered(app)
    channel = app.session.running.channel
    path = str(app.session.running.debug.dir / "patch-1.debug")
    message = {
        "type": "debug-info",
        "token": channel.token,
        "build_id": channel.build_id,
        "seq": 1,
        "path": path,
    }
    assert not schemas.problems("channel-debug-info", message)

    def send(**changes) -> dict:
        line = json.dumps(message | changes).encode() + b"\n"
        result = channel.exchange(line, schema="channel-debug-info-result")
        assert not schemas.problems("channel-debug-info-result", result)
        return result

    again = send()
    assert again["status"] == "refused" and "already registered" in again["reason"], again
    assert "not applied" in send(seq=7)["reason"]
    assert "wrong token" in send(token="x" * 32)["reason"]
    assert "build" in send(build_id="other")["reason"]
    # A patch result is never mistaken for a debug-info result: the next patch applies.
    app.edit("n + 5", "n + 6")
    app.patch()
    debug_info_delivered(app)
    assert app.session.app_alive


def test_a_patch_whose_debug_info_cannot_be_written_runs_and_is_reported_as_hl1095(live_app):
    app = live_app("debuggable")
    app.wait_line(lambda line: line.startswith("tick"), timeout=30)
    app.edit(WORK, "fn work(n: u32) -> u32 {\n    n + 5\n}")
    app.patch()
    debug_info_delivered(app)
    folder = app.session.running.debug.dir
    shutil.rmtree(folder)
    folder.write_text("not a folder")  # the next patch's debug ELF cannot be written there
    app.expect("debug-info-failed")
    app.edit("    n + 5", "    n + 7")
    patched = app.patch()
    assert app.session.running.debug.wait_idle(30)
    failed = [e for e in app.events if e["event"] == "debug-info-failed"]
    assert [(e["seq"], e["rule"]) for e in failed] == [(patched["seq"], "HL1095")]
    assert failed[0]["message"].startswith(f"no debug info for patch {patched['seq']} (NotADirectoryError")
    assert failed[0]["message"].endswith(
        "it runs, but debuggers, backtraces and profilers do not see its code"
    )
    mark = app.mark()

    def new_code(line: str) -> bool:
        n, v = (int(part.split("=")[1]) for part in line.split()[1:3])
        return v == (n + 7) * 2

    app.wait_line(lambda line: line.startswith("tick n=") and new_code(line), after=mark)
