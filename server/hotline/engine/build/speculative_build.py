"""One speculative build: the captured rustc commands of a chain of crates run again in the
shadow of the workspace (shadow_workspace.py), niced, each crate's objects kept.

An edited library is compiled with every workspace crate after it up to the binary, as a
save rebuilds them: each links the shadow's new rlibs (shadow_args.py). The save that uses
the build copies those rlibs over the real ones, as its own replay would have written them
(`ShadowWorkspace.adopt`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hotline.engine.build.shadow_args import linking_shadow, remapped, shadow_args
from hotline.engine.build.shadow_workspace import ShadowWorkspace, read_text
from hotline.engine.build.workspace import Crate, extract_objects

_JOBSERVER_VARS = ("CARGO_MAKEFLAGS", "MAKEFLAGS", "MFLAGS")
# Speculative builds yield the CPU to everything the user waits for. `nice` (coreutils) sets
# it before rustc starts its threads, where setpriority afterwards would miss some of them.
_NICE = ("nice", "-n", "10") if shutil.which("nice") else ()


def rebuilt_libraries(chain: list[Crate]) -> set[Path]:
    """The real rlib and metadata files of the chain's libraries, which it builds anew."""
    return {c.out_dir / f"lib{c.stem}{ext}" for c in chain if c.kind != "bin" for ext in (".rlib", ".rmeta")}


def linked_rlibs(chain: list[Crate]) -> tuple:
    """What identifies the rlibs the chain's crates link, but for those the chain rebuilds
    itself: a library save rewrites its rlib."""
    rebuilt = rebuilt_libraries(chain)
    out = []
    for crate in chain:
        for path in crate.externs().values():
            if path not in rebuilt:
                try:
                    st = os.stat(path)
                    out.append((path, st.st_ino, st.st_size, st.st_mtime_ns))
                except OSError:
                    out.append((path, None))
    return tuple(out)


@dataclass
class SpeculativeBuild:
    """One speculative build: what it compiles from which texts, its rustc, and what came of it."""

    chain: list[Crate]  # what it compiles, dependencies first: the save's dirty crates
    overlays: dict[Path, bytes]  # real path -> the editor's text, written into the shadow
    signature: tuple  # overlays, disk stats and rlibs: the same again means no new build
    externs: tuple
    folder: Path  # per crate key, a folder of its objects
    started: float = field(default_factory=time.perf_counter)
    ready: threading.Event = field(default_factory=threading.Event)  # `prepared` is known
    done: threading.Event = field(default_factory=threading.Event)
    planned: threading.Event = field(default_factory=threading.Event)  # `plan` is final
    plan: Any = None
    prepared: dict[Path, bytes] | None = None  # real path -> digest of what the shadow holds
    key: dict[Path, bytes] | None = None  # real path -> digest, of the files rustc read
    depinfo: dict[str, str] = field(default_factory=dict)  # per crate key, in shadow paths
    proc: subprocess.Popen | None = None  # the chain's rustc running now
    reaped: bool = False
    cancelled: bool = False
    hurried: bool = False  # a save waits for it: the rest of the chain runs un-niced
    outcome: str = "pending"  # ok, failed, killed, cancelled, superseded, unusable
    stderr: list[str] = field(default_factory=list)
    cpu_s: float = 0.0

    @property
    def rebuilt(self) -> set[Path]:
        return rebuilt_libraries(self.chain)

    def objects(self, crate: Crate) -> Path:
        return self.folder / crate.key

    def run(self, shadow: ShadowWorkspace, lock: threading.Lock) -> None:
        """Compiles the chain in the shadow, crate by crate, each crate's objects to its
        folder; `lock` guards `proc` (the builder's, which kills it)."""
        self.prepared = shadow.mirror(self.chain, self.overlays)
        self.ready.set()
        if self.prepared is None:
            self.outcome = "unusable"
            return
        shadow.out_dir.mkdir(parents=True, exist_ok=True)
        key: dict[Path, bytes] = {}
        for crate in self.chain:
            self.objects(crate).mkdir(parents=True, exist_ok=True)
            rc = self._rustc(crate, shadow, lock)
            if rc is None:  # cancelled before it started
                return
            if rc < 0:
                self.outcome = "killed"
                return
            if rc != 0:
                self.outcome = "failed"
                return
            if crate.kind != "bin":  # a library's objects are inside the rlib it wrote
                extract_objects(shadow.out_dir / f"lib{crate.stem}.rlib", self.objects(crate))
            # kept now: the shadow's dep-info is rewritten by the next build
            depinfo = self.depinfo[crate.key] = read_text(shadow.out_dir / f"{crate.stem}.d")
            crate_key = shadow.key(crate, depinfo, self.prepared)
            if crate_key is None:
                self.outcome = "unusable"
                return
            key |= crate_key
        self.key = key
        self.outcome = "ok"

    def _rustc(self, crate: Crate, shadow: ShadowWorkspace, lock: threading.Lock) -> int | None:
        """One crate of the chain compiled in the shadow: rustc's exit status (negative when
        killed), or None if the build was cancelled before rustc started."""
        cwd = shadow.path_of(Path(crate.record["cwd"]).resolve())
        args = linking_shadow(crate.record["args"], self.rebuilt, shadow.out_dir)
        remap = f"{shadow.folder}={remapped(shadow.root, args)}"
        env = {k: v for k, v in crate.record["env"].items() if k not in _JOBSERVER_VARS}
        env["HOTLINE_THIN_DIR"] = str(self.objects(crate))
        with lock:
            if self.cancelled:
                return None
            self.reaped = False
            self.proc = subprocess.Popen(
                [
                    *(() if self.hurried else _NICE),
                    crate.record["rustc"],
                    *shadow_args(args, shadow.out_dir, shadow.incremental, remap),
                ],
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                process_group=0,  # killed as a group, linker shim included
            )
        proc = self.proc
        assert proc.stderr is not None
        self.stderr += proc.stderr.read().splitlines()
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
        with lock:  # reaped under the lock: a kill never reaches a reused pid
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            self.reaped = True
        self.cpu_s += usage.ru_utime + usage.ru_stime
        return proc.returncode

    def hurry(self) -> None:
        """The save waits for this build now: it is no longer background work (raising a
        priority back needs CAP_SYS_NICE; without it the build stays niced). The chain's
        crates yet to compile start un-niced."""
        self.hurried = True
        proc = self.proc
        if proc is None:
            return
        with contextlib.suppress(OSError):
            for tid in os.listdir(f"/proc/{proc.pid}/task"):
                with contextlib.suppress(OSError):
                    os.setpriority(os.PRIO_PROCESS, int(tid), 0)
