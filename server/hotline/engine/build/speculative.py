"""Speculative builds: the crates a save would rebuild, compiled from the editor's unsaved
texts while the user pauses, so that the save of exactly those texts skips rustc.

The captured rustc commands run again in a shadow of the workspace (`target/hotline/shadow/
<root>`): the crates' source files mirrored from disk, the unsaved ones written with the
editor's text. Its outputs and incremental cache are the shadow's own; the user's files,
rlibs and executable are never written. `--remap-path-prefix` maps the shadow back to the
real root, and relative source paths (`src/main.rs`) stay as cargo gave them, so panic
Locations, debug info and diagnostics are those of a save build, byte for byte.

An edited library is compiled with every workspace crate after it up to the binary, as a
save rebuilds them: each links the shadow's new rlibs (`--extern` pointed there, the
shadow's outputs searched too: rustc's crate-hash check skips the real rlib, whose hash
is older, and takes either of two copies that are the same). The save that uses the build
copies those rlibs over the real ones, as its own replay would have written them.

The incremental cache cannot be shared with save builds: the working directory and
`--remap-path-prefix` are tracked options, and rustc discards a cache made with other
ones ("completely ignoring cache because of differing commandline arguments").

A result is keyed by content: the digest of every file the build read. A save uses it only
if the files on disk have exactly those contents (and the linked rlibs are unchanged).

Once a build is done, `plan_ahead` (the session's) diffs and links its objects against what
the app runs (patch_plan.py), so a save of those texts only sends the patch.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hotline.engine.build.workspace import Crate, depinfo_entries, dirty_crates, extract_objects, owning_crate

log = logging.getLogger("hotline")
_JOBSERVER_VARS = ("CARGO_MAKEFLAGS", "MAKEFLAGS", "MFLAGS")
# Speculative builds yield the CPU to everything the user waits for. `nice` (coreutils) sets
# it before rustc starts its threads, where setpriority afterwards would miss some of them.
_NICE = ("nice", "-n", "10") if shutil.which("nice") else ()


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def _file_digest(path: Path) -> bytes | None:
    try:
        return _digest(path.read_bytes())
    except OSError:
        return None


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _remapped(path: Path, args: list[str]) -> Path:
    """`path` as the crate's own `--remap-path-prefix` options show it (the last match wins)."""
    maps = [
        a.split("=", 1)[1] if a.startswith("--remap-path-prefix=") else args[i + 1]
        for i, a in enumerate(args)
        if a.startswith("--remap-path-prefix=") or (a == "--remap-path-prefix" and i + 1 < len(args))
    ]
    for mapping in reversed(maps):
        frm, _, to = mapping.partition("=")
        if path.is_relative_to(frm):
            return Path(to) / path.relative_to(frm)
    return path


def shadow_args(args: list[str], out_dir: Path, incremental: Path, remap: str) -> list[str]:
    """The captured arguments with every output moved into `out_dir` (`--out-dir`, `-o`,
    `--emit kind=path`), the shadow's incremental cache, and `remap` added last (it wins)."""
    out: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        value = args[i + 1] if i + 1 < len(args) else None
        if a in ("--out-dir", "-o", "--emit") and value is not None:
            out += [a, _redirect(a, value, out_dir)]
            i += 2
            continue
        if a == "-C" and value is not None and value.startswith("incremental="):
            out += ["-C", f"incremental={incremental}"]
            i += 2
            continue
        if a.startswith("--out-dir="):
            a = f"--out-dir={out_dir}"
        elif a.startswith("--emit="):
            a = "--emit=" + _redirect("--emit", a.split("=", 1)[1], out_dir)
        elif a.startswith("-Cincremental="):
            a = f"-Cincremental={incremental}"
        out.append(a)
        i += 1
    return [*out, f"--remap-path-prefix={remap}"]


def _redirect(flag: str, value: str, out_dir: Path) -> str:
    if flag == "--out-dir":
        return str(out_dir)
    if flag == "-o":
        return str(out_dir / Path(value).name)
    kinds = []  # --emit: `kind` or `kind=path`
    for kind in value.split(","):
        name, eq, path = kind.partition("=")
        kinds.append(f"{name}={out_dir / Path(path).name}" if eq and path != "-" else kind)
    return ",".join(kinds)


def _rebuilt_libraries(chain: list[Crate]) -> set[Path]:
    """The real rlib and metadata files of the chain's libraries, which it builds anew."""
    return {c.out_dir / f"lib{c.stem}{ext}" for c in chain if c.kind != "bin" for ext in (".rlib", ".rmeta")}


def _linked_rlibs(chain: list[Crate]) -> tuple:
    """What identifies the rlibs the chain's crates link, but for those the chain rebuilds
    itself: a library save rewrites its rlib."""
    rebuilt = _rebuilt_libraries(chain)
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


def _linking_shadow(args: list[str], rebuilt: set[Path], out_dir: Path) -> list[str]:
    """The crate's arguments with each `--extern` of a `rebuilt` library file pointed at the
    shadow's output, and the shadow's outputs searched too: a crate rebuilt in the shadow
    finds the crates it depends on, also rebuilt, by their new hash (rustc's hash check
    skips the real ones)."""
    out = list(args)
    for i, a in enumerate(out[:-1]):
        name, eq, path = out[i + 1].partition("=")
        if a == "--extern" and eq and Path(path) in rebuilt:
            out[i + 1] = f"{name}={out_dir / Path(path).name}"
    return [*out, "-L", f"dependency={out_dir}"]


@dataclass
class Speculated:
    """A speculative build a save uses: rustc's stderr, when the files were compared, and
    the patch planned from it ahead of the save, if any (`plan_ahead`'s result)."""

    stderr: list[str]
    hashed_at: float
    plan: Any = None


@dataclass
class _Build:
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
        return _rebuilt_libraries(self.chain)

    def objects(self, crate: Crate) -> Path:
        return self.folder / crate.key


class SpeculativeBuilder:
    """At most one background rustc at a time, niced; a newer start kills the one in flight."""

    def __init__(
        self,
        target_dir: Path,
        workspace_root: Path,
        plan_ahead: Callable[[dict[str, Path]], Any] | None = None,
        on_stats: Callable[[dict], None] | None = None,
        on_ended: Callable[[str, list[str]], None] | None = None,
    ) -> None:
        """`plan_ahead(objects folder per crate key)` runs after each build that a save
        could use; what it returns comes back with the build (`Speculated.plan`).
        `on_stats(stats)` is called when a build ends, is used, or is thrown away;
        `on_ended(outcome, rustc's stderr)` when rustc ran to its end ("ok" or "failed")."""
        self.root = workspace_root.resolve()
        self.plan_ahead = plan_ahead
        self.on_stats = on_stats
        self.on_ended = on_ended
        self.shadow = target_dir / "shadow" / self.root.name
        self.out_dir = target_dir / "shadow-out"
        self.incremental = target_dir / "shadow-incremental"
        self.objects = target_dir / "shadow-objects"
        self._lock = threading.Lock()  # guards the fields below and each build's proc
        self._serial = threading.Lock()  # one build writes the shadow and runs rustc at a time
        self._current: _Build | None = None  # the newest build: running, or done and kept
        self._seq = 0
        self._fresh = True  # the objects folder may hold an earlier engine's leftovers
        # real path -> (size, mtime, digest) of the disk file last copied into the shadow
        self._mirrored: dict[Path, tuple[int, int, bytes]] = {}
        self.history: deque[dict] = deque(maxlen=200)  # finished builds: outcome, ms, cpu_s
        self.stats = {"builds": 0, "ended": 0, "used": 0, "killed": 0, "cpu_s_used": 0.0, "cpu_s_wasted": 0.0}

    # -- while the user types ----------------------------------------------------------
    def start(self, crates: list[Crate], overlays: dict[Path, str]) -> bool:
        """Compiles, from `overlays` (unsaved texts) on a thread, the crates a save of them
        would rebuild: the edited crates and those that depend on them, binary last. Unless
        a build of the same texts is under way or done. Returns whether one is: nothing is
        built without a text of the app's crates, nor when a proc-macro would be rebuilt.
        A text of no crate's sources is left out (a test, a crate the app does not use: no
        build reads it), unless it lies in a crate's source folder: it may be a module that
        a `mod` line typed in its crate now reads."""
        texts = {p.resolve(): t.encode() for p, t in overlays.items()}
        owners = {p: owner.key for p in texts if (owner := owning_crate(crates, p)) is not None}
        folders = [f for c in crates if (f := c.source_folder) is not None]
        texts = {p: t for p, t in texts.items() if p in owners or any(p.is_relative_to(f) for f in folders)}
        chain = self._chain(crates, texts, set(owners.values())) if texts else None
        plan = self._plan(chain, texts) if chain is not None else None
        with self._lock:
            current = self._current
            if plan is not None and current is not None and self._same(current, plan[0]):
                return True
            self._current = None
            if current is not None:
                self._drop(current)
            if plan is None or chain is None:
                return False
            self._seq += 1
            build = _Build(chain, texts, plan[0], plan[1], self.objects / str(self._seq))
            self._current = build
            self.stats["builds"] += 1
        threading.Thread(target=self._work, args=(build,), daemon=True).start()
        return True

    @staticmethod
    def _same(build: _Build, signature: tuple) -> bool:
        """The buffers did not change since `build` started, nor did the files and rlibs."""
        return not build.cancelled and build.signature == signature and build.outcome in ("pending", "ok")

    def _chain(self, crates: list[Crate], texts: dict[Path, bytes], edited: set[str]) -> list[Crate] | None:
        """The crates a save of `texts` would rebuild, from the `edited` ones whose sources
        they are, or None: no text is a crate's source (a new module alone changes no
        build), a text lies outside the workspace (the shadow holds none), or a proc-macro
        is among them (the save refuses it, HL1006)."""
        if not crates or crates[-1].kind != "bin" or not all(p.is_relative_to(self.root) for p in texts):
            return None
        chain = dirty_crates(crates, edited)
        return None if not edited or any(c.kind == "proc-macro" for c in chain) else chain

    def _plan(self, chain: list[Crate], texts: dict[Path, bytes]) -> tuple | None:
        """(signature, rlib stats) of a build, or None when speculation would be unsound."""
        disk = []
        for crate in chain:
            cwd = Path(crate.record["cwd"]).resolve()
            if not cwd.is_relative_to(self.root):
                return None
            for entry in depinfo_entries(_read(crate.out_dir / f"{crate.stem}.d")):
                path = Path(os.path.normpath(cwd / entry))
                if not Path(entry).is_absolute() and not path.is_relative_to(self.root):
                    return None  # a relative path out of the root would leave the shadow
                if path not in texts:
                    with contextlib.suppress(OSError):
                        st = path.stat()
                        disk.append((path, st.st_size, st.st_mtime_ns))
        externs = _linked_rlibs(chain)
        overlaid = tuple(sorted((p, _digest(t)) for p, t in texts.items()))
        return (overlaid, tuple(disk), externs, tuple(id(c.record) for c in chain)), externs

    def _work(self, build: _Build) -> None:
        with self._serial:
            try:
                if not build.cancelled:
                    self._run(build)
            except Exception as e:  # a background build: it only ever fails to be used
                build.stderr = [f"{type(e).__name__}: {e}"]
                log.debug("speculative build failed", exc_info=True)
            finally:
                self._finish(build)
        try:
            if self.plan_ahead is not None and build.outcome == "ok" and not build.cancelled:
                build.plan = self.plan_ahead({c.key: build.objects(c) for c in build.chain})
        except Exception:  # the save then plans the patch itself
            log.debug("planning a speculative build's patch failed", exc_info=True)
        finally:
            build.planned.set()

    def _run(self, build: _Build) -> None:
        if self._fresh:
            shutil.rmtree(self.objects, ignore_errors=True)
            self._fresh = False
        build.prepared = self._mirror(build)
        build.ready.set()
        if build.prepared is None:
            build.outcome = "unusable"
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        key: dict[Path, bytes] = {}
        for crate in build.chain:
            build.objects(crate).mkdir(parents=True, exist_ok=True)
            rc = self._rustc(crate, build)
            if rc is None:  # cancelled before it started
                return
            if rc < 0:
                build.outcome = "killed"
                return
            if rc != 0:
                build.outcome = "failed"
                return
            if crate.kind != "bin":  # a library's objects are inside the rlib it wrote
                extract_objects(self.out_dir / f"lib{crate.stem}.rlib", build.objects(crate))
            crate_key = self._key(crate, build)
            if crate_key is None:
                build.outcome = "unusable"
                return
            key |= crate_key
        build.key = key
        build.outcome = "ok"

    def _rustc(self, crate: Crate, build: _Build) -> int | None:
        """One crate of the chain compiled in the shadow: rustc's exit status (negative when
        killed), or None if the build was cancelled before rustc started."""
        cwd = self.shadow / Path(crate.record["cwd"]).resolve().relative_to(self.root)
        args = _linking_shadow(crate.record["args"], build.rebuilt, self.out_dir)
        remap = f"{self.shadow}={_remapped(self.root, args)}"
        env = {k: v for k, v in crate.record["env"].items() if k not in _JOBSERVER_VARS}
        env["HOTLINE_THIN_DIR"] = str(build.objects(crate))
        with self._lock:
            if build.cancelled:
                return None
            build.reaped = False
            build.proc = subprocess.Popen(
                [
                    *(() if build.hurried else _NICE),
                    crate.record["rustc"],
                    *shadow_args(args, self.out_dir, self.incremental, remap),
                ],
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                process_group=0,  # killed as a group, linker shim included
            )
        proc = build.proc
        assert proc.stderr is not None
        build.stderr += proc.stderr.read().splitlines()
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
        with self._lock:  # reaped under the lock: a kill never reaches a reused pid
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            build.reaped = True
        build.cpu_s += usage.ru_utime + usage.ru_stime
        return proc.returncode

    def _mirror(self, build: _Build) -> dict[Path, bytes] | None:
        """Brings the shadow up to date: disk files copied when their size or mtime
        changed, overlays written. Returns the digest of each file rustc may read (None if
        one would lie outside the shadow)."""
        prepared: dict[Path, bytes] = {}
        for crate in build.chain:
            walked = self._mirror_folder(crate.source_folder, build)
            cwd = Path(crate.record["cwd"]).resolve()
            for entry in depinfo_entries(_read(crate.out_dir / f"{crate.stem}.d")):
                real = Path(os.path.normpath(cwd / entry))
                if Path(entry).is_absolute():  # read in place by the shadow build too
                    digest = _file_digest(real)
                    if digest is not None:
                        prepared[real] = digest
                    continue
                if not real.is_relative_to(self.root):
                    return None
                if real in build.overlays:
                    prepared[real] = _digest(build.overlays[real])
                    continue
                digest = walked[real] if real in walked else self._mirror_file(real)
                if digest is not None:
                    prepared[real] = digest
        for real, text in build.overlays.items():  # a new module's is not prepared: it may go unread
            shadow = self.shadow / real.relative_to(self.root)
            shadow.parent.mkdir(parents=True, exist_ok=True)
            shadow.write_bytes(text)
            self._mirrored.pop(real, None)  # refreshed from disk once no longer overlaid
        return prepared

    def _mirror_folder(self, folder: Path | None, build: _Build) -> dict[Path, bytes | None]:
        """The `.rs` files of a crate's source folder mirrored too, though its last build
        did not read them: a `mod` line typed since may (the dep-info then says so, and the
        build's key has them). Their digests, by real path."""
        walked: dict[Path, bytes | None] = {}
        if folder is None or not folder.is_relative_to(self.root):
            return walked
        for parent, dirs, files in os.walk(folder):
            dirs[:] = [d for d in dirs if d != "target" and not d.startswith(".")]
            for name in files:
                real = Path(parent) / name
                if name.endswith(".rs") and real not in build.overlays:
                    walked[real] = self._mirror_file(real)
        return walked

    def _mirror_file(self, real: Path) -> bytes | None:
        """The disk file copied into the shadow if it changed since the last copy (a file
        gone is gone from the shadow too): its digest."""
        shadow = self.shadow / real.relative_to(self.root)
        try:
            st = real.stat()
        except OSError:
            shadow.unlink(missing_ok=True)
            self._mirrored.pop(real, None)
            return None
        known = self._mirrored.get(real)
        if known is None or known[:2] != (st.st_size, st.st_mtime_ns) or not shadow.exists():
            data = real.read_bytes()  # after the stat: a newer file is copied again next time
            shadow.parent.mkdir(parents=True, exist_ok=True)
            shadow.write_bytes(data)
            known = self._mirrored[real] = (st.st_size, st.st_mtime_ns, _digest(data))
        return known[2]

    def _key(self, crate: Crate, build: _Build) -> dict[Path, bytes] | None:
        """Digest of every file the crate's build read (its dep-info), or None if it read a
        file whose contents cannot be vouched for."""
        assert build.prepared is not None
        cwd = self.shadow / Path(crate.record["cwd"]).resolve().relative_to(self.root)
        key: dict[Path, bytes] = {}
        depinfo = build.depinfo[crate.key] = _read(self.out_dir / f"{crate.stem}.d")  # rewritten next build
        for entry in depinfo_entries(depinfo):
            path = Path(os.path.normpath(cwd / entry))
            if path.is_relative_to(self.shadow):
                real = self.root / path.relative_to(self.shadow)
                digest = build.prepared.get(real) or _file_digest(path)  # a stale mirrored file
            else:  # read in place: it must not have changed while rustc ran
                real, digest = path, _file_digest(path)
                if digest is None or build.prepared.get(real) != digest:
                    return None
            if digest is None:
                return None
            key[real] = digest
        return key

    def _finish(self, build: _Build) -> None:
        with self._lock:  # `done` is set under the lock: `_drop` sees the outcome or the process
            if build.outcome == "pending":
                build.outcome = "cancelled" if build.cancelled else "failed"
            elif build.cancelled and build.outcome == "ok":
                build.outcome = "superseded"
            if build.outcome != "ok":
                self._waste(build)
            if build.outcome == "killed":
                self.stats["killed"] += 1
            self.stats["ended"] += 1
            ms = round((time.perf_counter() - build.started) * 1000, 1)
            self.history.append({"outcome": build.outcome, "ms": ms, "cpu_s": round(build.cpu_s, 3)})
            self._report()
            if self.on_ended is not None and build.outcome in ("ok", "failed") and not build.cancelled:
                self.on_ended(build.outcome, build.stderr)
            build.ready.set()
            build.done.set()
            if build.outcome != "ok":
                build.planned.set()

    def _report(self) -> None:
        """Under `_lock`: the running totals, to `on_stats`."""
        if self.on_stats is not None:
            self.on_stats({k: round(v, 3) if isinstance(v, float) else v for k, v in self.stats.items()})

    def _waste(self, build: _Build) -> None:
        self.stats["cpu_s_wasted"] += build.cpu_s
        shutil.rmtree(build.folder, ignore_errors=True)

    def _drop(self, build: _Build) -> None:
        """Under `_lock`: the build will not be used. A running rustc is killed; a finished
        build's objects are deleted (its CPU counted as thrown away)."""
        if build.cancelled:
            return
        build.cancelled = True
        if build.done.is_set():
            if build.outcome == "ok":
                self._waste(build)
                self._report()
        elif build.proc is not None and not build.reaped:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(build.proc.pid, signal.SIGKILL)

    @property
    def last_build_ms(self) -> float | None:
        """How long the newest finished build took, start to objects ready (None before one)."""
        with self._lock:
            done = [h["ms"] for h in self.history if h["outcome"] in ("ok", "superseded")]
        return done[-1] if done else None

    @property
    def rustc_pid(self) -> int | None:
        """The speculative rustc running now, if any (to check that it is niced, or killed)."""
        with self._lock:
            build = self._current
            if build is None or build.proc is None or build.reaped:
                return None
            return build.proc.pid

    def interrupt(self) -> None:
        """The texts changed again: a build in flight is of stale text and is killed. A
        finished one is kept: an undo may bring its text back before the save."""
        with self._lock:
            current = self._current
            if current is not None and not current.done.is_set():
                self._current = None
                self._drop(current)

    def cancel(self) -> None:
        """Kills the build in flight and forgets any result (the app stopped or restarts)."""
        with self._lock:
            current, self._current = self._current, None
            if current is not None:
                self._drop(current)

    # -- on save -------------------------------------------------------------------------
    def take(self, dirty: list[Crate], folders: dict[str, Path]) -> Speculated | None:
        """The speculative build of exactly the files now on disk, each crate's objects
        moved to its folder in `folders`; waits for it if it is still running. None
        otherwise (a build that cannot match is killed, so the save build has the CPU)."""
        with self._lock:
            build, self._current = self._current, None
        if build is None:
            return None
        usable = [id(c.record) for c in dirty] == [id(c.record) for c in build.chain]
        if usable:
            build.ready.wait()
            usable = (
                build.prepared is not None
                and self._on_disk(build.prepared)
                and _linked_rlibs(build.chain) == build.externs
            )
        if not usable:
            self._keep_or_drop(build)
            return None
        self._hurry(build)
        build.done.wait()
        build.planned.wait()  # soon: planning needs the session, which this save holds
        hashed_at = time.time()
        if build.outcome != "ok" or build.key is None or not self._on_disk(build.key):
            self._keep_or_drop(build)
            return None
        for crate in build.chain:
            self._adopt(crate, build.depinfo[crate.key])
            folders[crate.key].parent.mkdir(parents=True, exist_ok=True)
            build.objects(crate).rename(folders[crate.key])
        with self._lock:
            self.stats["used"] += 1
            self.stats["cpu_s_used"] += build.cpu_s
            self._report()
        return Speculated(build.stderr, hashed_at, build.plan)

    def _keep_or_drop(self, build: _Build) -> None:
        """A finished build stays for a later save (of the other files it overlaid, say);
        a running one is killed."""
        with self._lock:
            if build.done.is_set() and build.outcome == "ok" and self._current is None:
                self._current = build
            elif build is not self._current:
                self._drop(build)

    @staticmethod
    def _on_disk(digests: dict[Path, bytes]) -> bool:
        return all(_file_digest(path) == digest for path, digest in digests.items())

    @staticmethod
    def _hurry(build: _Build) -> None:
        """The save waits for this build now: it is no longer background work (raising a
        priority back needs CAP_SYS_NICE; without it the build stays niced). The chain's
        crates yet to compile start un-niced."""
        build.hurried = True
        proc = build.proc
        if proc is None:
            return
        with contextlib.suppress(OSError):
            for tid in os.listdir(f"/proc/{proc.pid}/task"):
                with contextlib.suppress(OSError):
                    os.setpriority(os.PRIO_PROCESS, int(tid), 0)

    def _adopt(self, crate: Crate, depinfo: str) -> None:
        """The crate's outputs become the speculative build's, as a save build's replay
        would have written them: a library's rlib and metadata, which later builds of the
        crates after it link, and the dep-info in real paths, which lists the files the
        running code was compiled from (`Crate.sources`). Copied: the shadow keeps its own."""
        if crate.kind != "bin":
            for name in (f"lib{crate.stem}.rlib", f"lib{crate.stem}.rmeta"):
                if (self.out_dir / name).exists():
                    temp = crate.out_dir / f"{name}.speculative"
                    shutil.copyfile(self.out_dir / name, temp)
                    temp.replace(crate.out_dir / name)
        text = depinfo.replace(str(self.out_dir), str(crate.out_dir)).replace(
            str(self.shadow), str(self.root)
        )
        with contextlib.suppress(OSError):
            temp = crate.out_dir / f"{crate.stem}.d.speculative"
            temp.write_text(text)
            temp.replace(crate.out_dir / f"{crate.stem}.d")
