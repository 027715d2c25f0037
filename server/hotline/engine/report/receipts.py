"""Receipts: tells the user when an edited function's new code first ran, and when it has
not run a few seconds after its patch (HL1013: an init function, a `Startup` system, a
`Router` built once: it ran before the patch and will not run again).

The patch linker gave every function copy of a patch a first-call flag
(`first_call_stubs.py`); this module asks the app's runtime to read the flags of the
functions the user edited, and of the copies their code was inlined into (`carriers`: at
opt-level >= 1 an edited closure may run only inside an instance of `Option::map`; its
receipt is then `ran` once such a copy was entered, and says through which) (a `receipts` message on the patch channel, under its lock, one
answer per request), on a background thread: often right after a patch, so that `ran`
is reported within a few tens of milliseconds, then once a second. Each function is
reported once as `ran`; one still unrun after `NOT_RUN_AFTER` seconds is reported once as
`not-run` and watched on, so that a late first call is still reported as `ran`. A newer
patch of the same function takes over its receipt. Reading stops when the channel closes
(`on_failure`: the session reports it as an `engine-error` unless the app exited, whose
`app-exited` is the news).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from hotline.engine.analyse.demangle import demangle
from hotline.engine.analyse.object_cache import Build
from hotline.engine.app.channel import PatchChannel
from hotline.engine.link.patch_link import LinkedPatch
from hotline.engine.report import patch_warnings

RULE = "HL1013"
NOT_RUN_AFTER = 3.0  # seconds after its patch a function that has not run is reported
FAST, SLOW = 0.02, 1.0  # seconds between reads: in the first second after a patch, and later


class ReceiptsRefused(Exception):
    """The runtime refused a receipts message the engine made: a bug on one side."""


@dataclass
class _Pending:
    seq: int
    symbol: str
    flag: int | None  # its own copy's, if it has one in the patch
    carriers: dict[str, int]  # copies its code was inlined into -> their flags
    callable: bool  # something refers to its own copy; if not, only carriers can say it ran
    patched_at: float  # time.monotonic()
    warning: dict  # the HL1013 warning, at the function's declaration
    reported: bool = False  # its not-run was reported, or another warning explains it


class Receipts:
    """The edited functions of applied patches whose receipt is not in yet, and the thread
    that reads their flags."""

    def __init__(
        self,
        channel: PatchChannel,
        on_event: Callable[[dict], None],
        on_failure: Callable[[Exception], None],
    ) -> None:
        """`on_failure` is told why reading stopped: a lost channel (the app exited) or a bug."""
        self.channel, self.on_event, self.on_failure = channel, on_event, on_failure
        self._pending: list[_Pending] = []
        self._spans: dict[int, tuple[int, int]] = {}  # seq -> (first flag, count)
        self._cv = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="hotline-receipts", daemon=True)
        self._thread.start()

    def track(
        self,
        seq: int,
        linked: LinkedPatch,
        warnings: dict[str, dict],
        carriers: dict[str, list[str]],
        callable: Collection[str] = (),
        explained: Collection[str] = (),
    ) -> None:
        """Watches the flags of patch `seq`'s functions in `warnings` (symbol -> its HL1013
        warning, without the message) and of their `carriers` (symbol -> the patch's copies
        its code was inlined into); earlier patches' receipts of them are dropped. Only the
        `callable` ones (something refers to their own copy: `referenced_by`) or those with
        carriers can be reported not run: a copy nothing calls says nothing by staying
        unrun. The `explained` ones get no not-run: another warning says why their new code
        does not run yet (HL1012, a loop in them still running), though their `ran` is
        reported."""
        now = time.monotonic()
        flags = linked.first_call_flags
        with self._cv:
            self._pending = [p for p in self._pending if p.symbol not in warnings]
            self._spans[seq] = linked.flags
            for symbol, warning in warnings.items():
                hosts = {h: flags[h] for h in carriers.get(symbol, ()) if h in flags}
                if (symbol in flags and symbol in callable) or hosts:
                    self._pending.append(
                        _Pending(
                            seq,
                            symbol,
                            flags.get(symbol),
                            hosts,
                            symbol in callable,
                            now,
                            warning,
                            symbol in explained,
                        )
                    )
            self._cv.notify_all()

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify_all()

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._closed and not self._pending:
                    self._cv.wait()
                if self._closed:
                    return
                pending = list(self._pending)
                spans = {p.seq: self._spans[p.seq] for p in pending}
            try:
                self._report(pending, self._read(spans))
            except Exception as e:  # the channel is gone, or the app answered what it should not
                if not self._closed:
                    self.on_failure(e)
                return
            with self._cv:
                if self._pending:
                    young = min(time.monotonic() - p.patched_at for p in self._pending)
                    self._cv.wait(FAST if young < 1.0 else SLOW)

    def _read(self, spans: dict[int, tuple[int, int]]) -> dict[int, str]:
        """seq -> its flags, as the runtime read them (`1`: ran)."""
        message = {
            "type": "receipts",
            "token": self.channel.token,
            "build_id": self.channel.build_id,
            "patches": [{"seq": s, "flags": at, "count": n} for s, (at, n) in sorted(spans.items())],
        }
        line = json.dumps(message, separators=(",", ":")).encode() + b"\n"
        answer = self.channel.exchange(line, schema="channel-receipts-result")
        if answer["status"] != "read":
            raise ReceiptsRefused(f"the app refused to read receipts: {answer.get('reason')}")
        return {p["seq"]: p["ran"] for p in answer["patches"]}

    def _report(self, pending: list[_Pending], ran: dict[int, str]) -> None:
        now = time.monotonic()
        done: list[_Pending] = []
        late: list[_Pending] = []
        via: dict[int, list[str]] = {}  # id(p) -> the carriers that ran, when its own copy has not
        for p in pending:
            start = self._spans[p.seq][0]
            flags = ran[p.seq]
            if p.flag is not None and flags[p.flag - start] == "1":
                done.append(p)
            elif hosts := [h for h, flag in p.carriers.items() if flags[flag - start] == "1"]:
                done.append(p)
                via[id(p)] = hosts
            elif not p.reported and now - p.patched_at >= NOT_RUN_AFTER:
                late.append(p)
        with self._cv:
            # a newer patch of the function may have taken its receipt over meanwhile
            current = {id(p) for p in self._pending}
            done = [p for p in done if id(p) in current]
            late = [p for p in late if id(p) in current]
            gone = {id(p) for p in done}
            self._pending = [p for p in self._pending if id(p) not in gone]
            for p in late:
                p.reported = True
        for seq in sorted({p.seq for p in done}):
            mine = [p for p in done if p.seq == seq]
            event = {
                "event": "ran",
                "seq": seq,
                "functions": [demangle(p.symbol) for p in mine],
                "symbols": [p.symbol for p in mine],
                "ms": round(max(now - p.patched_at for p in mine) * 1000, 1),
            }
            inlined = {demangle(p.symbol): [demangle(h) for h in via[id(p)]] for p in mine if id(p) in via}
            if inlined:
                event["inlined_into"] = inlined
            self.on_event(event)
        for seq in sorted({p.seq for p in late}):
            mine = [p for p in late if p.seq == seq]
            self.on_event(
                {
                    "event": "not-run",
                    "seq": seq,
                    "rule": RULE,
                    "functions": [demangle(p.symbol) for p in mine],
                    "symbols": [p.symbol for p in mine],
                    "warnings": [p.warning | {"message": not_run_message(p.symbol)} for p in mine],
                }
            )


def not_run_message(symbol: str) -> str:
    return (
        f"{demangle(symbol)} has not been called since the patch ({NOT_RUN_AFTER:.0f} s): if it ran "
        "before the patch and runs only once (an init function, a Startup system), what it did "
        "stays as the old code did it: restart to apply"
    )


def receipt_warnings(crate_dir: Path, builds: dict[str, Build], symbols: list[str]) -> dict[str, dict]:
    """symbol -> its HL1013 warning at its declaration, the message filled in when reported."""
    return {s: patch_warnings.warning(crate_dir, builds, RULE, s, "") for s in symbols}


def receipt_carriers(builds: dict[str, Build], edited: list[str], changed: list[str]) -> dict[str, list[str]]:
    """edited symbol -> the `changed` copies its code was inlined into (inlined_functions.py):
    a copy that carries an edit changed with it, so only changed copies are read. Followed
    through the other changed copies: LLVM drops the record of a function inlined inside
    another inlined one when nothing of it keeps a line of its own (a closure folded into
    `map_fold::{{closure}}` inlined into `step`), but that generic instance's own copy still
    records it, and an instance calls only what its type arguments name."""
    inlined = {}
    for host in changed:
        build = next((b for b in builds.values() if host in b.fingerprints), None)
        inlined[host] = build.inlined(host) if build else set()
    carried: dict[str, set[str]] = {}
    for host in changed:
        reach, todo = set(inlined[host]), list(inlined[host])
        while todo:
            for more in inlined.get(todo.pop(), ()):
                if more not in reach:
                    reach.add(more)
                    todo.append(more)
        carried[host] = reach
    return {s: [h for h in changed if h != s and s in carried[h]] for s in edited}


def referenced_by(builds: list[Build], symbols: list[str]) -> set[str]:
    """Those of `symbols` that some code or data of `builds` refers to (references.py)."""
    referenced = [b.referenced() for b in builds]
    return {s for s in symbols if any(s in r for r in referenced)}
