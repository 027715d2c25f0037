"""The quiet stop (issue 26): entry jumps are written with the app's threads held by ptrace
(`thread_stop.py`), which the app cannot observe: no system call fails with EINTR, a thread
that blocks every signal stops like any other, a SIGPROF handler at 1 kHz survives.

The `stop_matrix` app has one thread blocked in each system call that a signal handler
makes fail with EINTR; each prints `NAME v=VERSION eintr=COUNT` when either changes, and
`version()` is what the tests edit. The app has no safe point: the new code reaches every
thread through entry jumps only.
"""

from __future__ import annotations

import statistics

from conftest import LiveApp

THREADS = [
    "tcp-read",
    "udp-recv",
    "unix-recv",
    "tcp-write",
    "epoll",
    "poll",
    "select",
    "nanosleep",
    "clock-nanosleep",
    "sigtimedwait",
    "futex",
    "accept",
    "pipe-read",
    "waitpid",
    "masked",  # blocks every signal
]
VERSION = "std::hint::black_box({})"


def latest(app: LiveApp) -> dict[str, tuple[int, int]]:
    """Each thread's last printed (version, EINTR count)."""
    out = {}
    for line in list(app.lines):
        name, _, rest = line.partition(" ")
        fields = dict(f.split("=", 1) for f in rest.split())
        if name in THREADS:
            out[name] = (int(fields["v"]), int(fields["eintr"]))
    return out


def patch_version(app: LiveApp, old: int, new: int) -> dict:
    app.edit(VERSION.format(old), VERSION.format(new))
    return app.patch()


def test_fifty_patches_under_the_quiet_stop_cause_no_eintr_and_reach_every_thread(live_app):
    app = live_app("stop_matrix")
    for name in THREADS:
        app.wait_line(lambda s, n=name: s == f"{n} v=1 eintr=0", timeout=20)
    assert app.session.running.channel.stop_mode == "ptrace"
    applies = []
    for version in range(2, 52):
        event = patch_version(app, version - 1, version)
        assert event["entry_jumps"]["written"] >= 1, event
        assert event["entry_jumps"]["skipped"] == 0, event
        assert not [w for w in event["warnings"] if w["rule"] in ("HL1008", "HL1009")], event["warnings"]
        applies.append(event["phases"]["apply"])
    for name in THREADS:
        app.wait_line(lambda s, n=name: s.startswith(f"{n} v=51 "), timeout=10)
    assert not app.exits()
    counts = latest(app)
    assert counts == {name: (51, 0) for name in THREADS}, counts
    assert not [line for line in app.lines if "eintr=" in line and not line.endswith("eintr=0")]
    print(f"apply ms: median {statistics.median(applies):.2f}, max {max(applies):.2f}")


def test_a_sigprof_handler_at_one_kilohertz_survives_two_hundred_patches(live_app):
    app = live_app("stop_matrix", app_args=["sigprof"])
    app.wait_line(lambda s: s == "busy v=1 profiled=true", timeout=20)
    for version in range(2, 202):
        event = patch_version(app, version - 1, version)
        assert event["entry_jumps"]["written"] >= 1, event
    app.wait_line(lambda s: s.startswith("busy v=201 "), timeout=10)
    assert not app.exits()
