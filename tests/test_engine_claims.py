"""Claims of README.md, ARCHITECTURE.md and docs/rude-edits.md with no other test (issue 19,
item 8): each rule HL1096-HL1099 is produced by a real fault, a failed patch leaves the next
one diffed against what runs, and a libc function new to the app is found by dlsym."""

from __future__ import annotations

import ctypes
import os
import socket
from pathlib import Path

from conftest import fields

VERSION_1 = "fn version() -> u32 {\n    1\n}"
EXTRA_EMPTY = "fn extra() -> String {\n    String::new()\n}"
#: A function no loaded library defines: rustc compiles a call to it, dlsym cannot find it.
MISSING = 'extern "C" {\n    fn hotline_test_no_such_function() -> u32;\n}\n'


def _only(app, pred, count: int = 3, after: int = 0) -> None:
    """The next `count` lines all satisfy `pred`: nothing else was printed in between."""
    lines = app.wait_lines(lambda s: s.startswith("v="), count, after=after)
    assert all(pred(fields(line)) for line in lines), lines


def test_a_symbol_no_library_defines_is_refused_by_the_app_with_hl1096(live_app):
    app = live_app("probe")
    app.wait_line(lambda s: s.startswith("v=1"))
    assert app.session.exe.address("hotline_test_no_such_function") is None
    app.edit(
        EXTRA_EMPTY,
        MISSING + "fn extra() -> String {\n    unsafe { hotline_test_no_such_function() }.to_string()\n}",
    )
    event = app.patch(expect="patch-refused")
    assert event["rule"] == "HL1096", event
    assert event["reason"] == "symbol hotline_test_no_such_function is not in any loaded library", event
    mark = app.mark()
    _only(app, lambda f: f["v"] == "1" and f["extra"] == "", after=mark)
    assert not app.exits()


def test_a_broken_patch_channel_refuses_the_patch_with_hl1097_and_the_app_runs_on(live_app):
    app = live_app("probe")
    app.wait_line(lambda s: s.startswith("v=1"))
    _shut_down_the_apps_channel_socket(app.session.running.proc.pid)
    app.edit(VERSION_1, "fn version() -> u32 {\n    5\n}")
    event = app.patch(expect="patch-refused")
    assert event["rule"] == "HL1097", event
    assert "connection" in event["reason"] or "closed the patch channel" in event["reason"], event
    mark = app.mark()
    _only(app, lambda f: f["v"] == "1", after=mark)
    assert not app.exits()


def _shut_down_the_apps_channel_socket(pid: int) -> None:
    """Shuts down the app's own end of the patch channel (its only socket), as a runtime
    whose connection broke would see it: pidfd_getfd duplicates the app's descriptor, and
    shutdown(2) acts on the socket, whichever descriptor names it."""
    links = {int(fd.name): os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()}
    fds = [fd for fd, link in links.items() if link.startswith("socket:")]
    assert len({links[fd] for fd in fds}) == 1, links  # one socket (the runtime clones its fd)
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = libc.syscall(434, pid, 0)  # pidfd_open
    assert pidfd >= 0, os.strerror(ctypes.get_errno())
    fd = libc.syscall(438, pidfd, fds[0], 0)  # pidfd_getfd
    os.close(pidfd)
    assert fd >= 0, os.strerror(ctypes.get_errno())
    with socket.socket(fileno=fd) as s:
        s.shutdown(socket.SHUT_RDWR)


def test_a_full_patch_region_refuses_the_patch_with_hl1098_and_the_app_runs_on(live_app):
    app = live_app("probe")
    app.wait_line(lambda s: s.startswith("v=1"))
    running = app.session.running
    # The region as it stands after ~256 MiB of patches: one page left.
    real_next, running.region_next = running.region_next, running.region_end - 4096
    app.edit(VERSION_1, "fn version() -> u32 {\n    5\n}")
    event = app.patch(expect="patch-refused")
    assert event == {
        "event": "patch-refused",
        "rule": "HL1098",
        "reason": "the patch region is full: restart the app",
    }
    mark = app.mark()
    _only(app, lambda f: f["v"] == "1", after=mark)
    assert running.region_next == running.region_end - 4096  # nothing was placed
    running.region_next = real_next  # (a restart gives a fresh region)
    app.patch()
    app.wait_line(lambda s: s.startswith("v=5 "))


def test_an_unsupported_relocation_refuses_the_patch_with_hl1099(live_app):
    app = live_app("probe")
    app.wait_line(lambda s: s.startswith("v=1"))
    # A 16-bit absolute reference (R_X86_64_16, type 12) in the function's code, jumped over.
    app.edit(
        VERSION_1,
        'fn version() -> u32 {\n    unsafe { core::arch::asm!("jmp 2f", ".2byte {0}", "2:", sym extra) };\n    3\n}',
    )
    event = app.patch(expect="patch-refused")
    assert event["rule"] == "HL1099", event
    assert event["reason"].startswith("unsupported relocation type 12 in "), event
    mark = app.mark()
    _only(app, lambda f: f["v"] == "1", after=mark)
    app.edit('    unsafe { core::arch::asm!("jmp 2f", ".2byte {0}", "2:", sym extra) };\n', "")
    app.patch()
    app.wait_line(lambda s: s.startswith("v=3 "))


def test_64_bit_dwarf_refuses_the_patch_with_hl1099(live_app):
    app = live_app("probe")
    app.wait_line(lambda s: s.startswith("v=1"))
    crate = app.session.crates[-1]
    args = crate.record["args"]
    crate.record["args"] = [*args, "-C", "llvm-args=-dwarf64"]  # rustc now writes 64-bit DWARF
    app.edit(VERSION_1, "fn version() -> u32 {\n    4\n}")
    event = app.patch(expect="patch-refused")
    assert event == {
        "event": "patch-refused",
        "rule": "HL1099",
        "reason": "cannot read probe's debug info: 64-bit DWARF is not supported",
    }
    mark = app.mark()
    _only(app, lambda f: f["v"] == "1", after=mark)
    crate.record["args"] = args
    app.patch()
    app.wait_line(lambda s: s.startswith("v=4 "))


def test_after_a_refused_patch_the_next_patch_is_diffed_against_what_runs(live_app):
    app = live_app("probe")
    app.wait_line(lambda s: s.startswith("v=1"))
    original = (app.crate / "src" / "main.rs").read_text()
    # Refused at delivery (HL1096): version 7 must never run.
    app.edit(VERSION_1, "fn version() -> u32 {\n    7\n}")
    app.edit(
        EXTRA_EMPTY,
        MISSING + "fn extra() -> String {\n    unsafe { hotline_test_no_such_function() }.to_string()\n}",
    )
    assert app.patch(expect="patch-refused")["rule"] == "HL1096"
    # Reverted, then a different edit: exactly the new behaviour, nothing of the refused one.
    (app.crate / "src" / "main.rs").write_text(original)
    app.edit(EXTRA_EMPTY, 'fn extra() -> String {\n    "new".into()\n}')
    patched = app.patch()
    assert patched["functions"] == ["probe::extra"], patched
    mark = app.mark()
    _only(app, lambda f: f["v"] == "1" and f["extra"] == "new", count=4, after=mark)
    # Refused at link (HL1099) with version 7 in it; then only the faulty part is fixed:
    # version 7 differs from what runs (1), so it must be in the next patch, and extra,
    # back to what runs, must not.
    app.edit(VERSION_1, "fn version() -> u32 {\n    7\n}")
    app.edit(
        '"new".into()',
        'unsafe { core::arch::asm!("jmp 2f", ".2byte {0}", "2:", sym version) };\n    "new".into()',
    )
    assert app.patch(expect="patch-refused")["rule"] == "HL1099"
    app.edit('unsafe { core::arch::asm!("jmp 2f", ".2byte {0}", "2:", sym version) };\n    ', "")
    patched = app.patch()
    assert patched["functions"] == ["probe::version"], patched  # extra is as it runs: unchanged
    mark = app.mark()
    _only(app, lambda f: f["v"] == "7" and f["extra"] == "new", count=4, after=mark)
    assert not app.exits()


def test_a_libc_function_the_binary_never_called_is_filled_by_dlsym(live_app):
    app = live_app("probe")
    app.wait_line(lambda s: s.startswith("v=1"))
    assert app.session.exe.address("getppid") is None  # not defined in the executable
    sent: list[dict] = []
    channel = app.session.running.channel
    send = channel.send_patch
    channel.send_patch = lambda message, *a, **k: (sent.append(message), send(message, *a, **k))[1]
    app.edit(
        EXTRA_EMPTY,
        'fn extra() -> String {\n    extern "C" {\n        fn getppid() -> i32;\n    }\n'
        '    format!("ppid{}", unsafe { getppid() })\n}',
    )
    app.patch()
    assert "getppid" in [i["name"] for i in sent[0]["imports"]], sent[0]["imports"]
    mark = app.mark()
    # The app's parent is this process (the Session launched it): the real getppid ran.
    _only(app, lambda f: f["extra"] == f"ppid{os.getpid()}", after=mark)
