"""An app outlives its engine; the next engine re-attaches to it instead of restarting it.

Hot reloading exists to keep the app's state, so an editor's window reload, `:LspRestart`
or a killed `hotline run` must not cost a restart. After launch and after every patch the
engine persists what patching needs (`app_record.AppRecord`, plus the earlier patches'
symbols); the runtime in the app keeps reconnecting to its channel's socket path. A new
engine on the same build directory finds the record, checks that the app still runs and
was built as this engine would build it, listens on that socket again, and goes on from
the recorded patch sequence: the statics, heap and threads are the app's own and never
noticed. An app that cannot be re-attached is stopped, with the reason, and rebuilt.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from hotline.engine.analyse.entry_jumps import EntryJumps
from hotline.engine.analyse.object_cache import ObjectCache
from hotline.engine.analyse.patch_scope import prepare as prepare_patch_scope
from hotline.engine.app import app_record, app_watch
from hotline.engine.app.app_output import OutputFiles
from hotline.engine.app.app_record import AdoptedProcess, AppRecord
from hotline.engine.app.channel import ChannelError, PatchChannel
from hotline.engine.app.running_app import RunningApp
from hotline.engine.build.workspace import load_crates
from hotline.engine.link.executable import ANCHOR, load_executable
from hotline.engine.link.patch_link import ProcessSymbols
from hotline.engine.session_state import SessionState

RECONNECT_TIMEOUT_S = 5.0  # the runtime retries once a second


class HandoverError(Exception):
    """Why an app left running cannot be re-attached; it is then stopped and rebuilt."""


def manifests(files: list[Path]) -> dict[str, str | None]:
    """A digest of each file whose change needs a full rebuild (None: absent)."""
    out: dict[str, str | None] = {}
    for path in files:
        try:
            out[str(path)] = hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()
        except OSError:
            out[str(path)] = None
    return out


def save(session: SessionState) -> None:
    """Persists what the next engine needs to go on patching the running app."""
    running = session.running
    if running is None or running.record is None:
        return
    running_dir = session.target_dir / "running"
    for name, folder in list(session.build_folders.items()):
        if not folder.is_relative_to(session.target_dir / "patches"):
            continue  # the fat build's folders stay until the next fat build
        # A patch's work folder is deleted by the next patch: keep its objects (hard links).
        kept, fresh = running_dir / name, running_dir / f"{name}.new"
        shutil.rmtree(fresh, ignore_errors=True)
        fresh.mkdir(parents=True)
        for obj in folder.glob("*.rcgu.o"):
            os.link(obj, fresh / obj.name)
        shutil.rmtree(kept, ignore_errors=True)
        fresh.rename(kept)
        session.build_folders[name] = kept
    record = running.record
    record.seq, record.region_next = running.seq, running.region_next
    record.crates = {
        c.key: {"folder": str(session.build_folders.get(c.key, "")), "compiled_at": c.compiled_at}
        for c in session.crates
    }
    symbols = session.target_dir / "app-symbols.pickle"
    tmp = symbols.with_suffix(".tmp")
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
        pickle.dump(running.prior, f, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(symbols)
    app_record.write(session.app_record, record)


def left_running(record_path: Path) -> int | None:
    """The pid of the app an earlier engine left running here, if one still runs: an editor
    starting up re-attaches to it at once rather than waiting for Run."""
    _, app = app_record.read(record_path)
    return app[0] if app is not None and app_record.is_alive(*app) else None


def adopt(session: SessionState) -> int | None:
    """Re-attaches to the app an earlier engine left running and returns its pid; None when
    there is none (one that cannot be re-attached is stopped, and the reason reported)."""
    record, app = app_record.read(session.app_record)
    if app is None or not app_record.is_alive(*app):
        app_record.clear(session.app_record)
        return None
    try:
        if record is None:
            raise HandoverError("an older Hotline launched it")
        _check_same_build(session, record)
        return _attach(session, record)
    except (HandoverError, ChannelError, OSError, pickle.UnpicklingError, EOFError, ValueError) as e:
        if session.running is not None:  # attached part way: let go of the channel
            session.running.channel.close()
            session.running = None
        app_record.stop(*app)
        app_record.clear(session.app_record)
        session.on_event({"event": "orphan-stopped", "pid": app[0], "reason": str(e)})
        return None


def _check_same_build(session: SessionState, record: AppRecord) -> None:
    if record.build_key != session.build_key:
        raise HandoverError("it was built with other settings (binary, features, profile or linker)")
    if record.app_args != session.app_args:
        raise HandoverError("it was launched with other arguments")
    changed = [
        Path(p).name
        for p, digest in manifests(session.restart_files).items()
        if record.manifests.get(p) != digest
    ]
    if changed or set(record.manifests) != {str(p) for p in session.restart_files}:
        raise HandoverError(f"{', '.join(changed) or 'the workspace'} changed since it was built")
    missing = [
        p
        for p in (record.executable, *(c["folder"] for c in record.crates.values()))
        if p and not Path(p).exists()
    ]
    if missing or not (session.target_dir / "app-symbols.pickle").exists():
        raise HandoverError(f"its build files are gone ({(missing or ['app-symbols.pickle'])[0]})")


def _attach(session: SessionState, record: AppRecord) -> int:
    session.exe = load_executable(Path(record.executable))
    session.build_id = record.build_id
    session.crates = load_crates(session.capture_dir, session.crate_name)
    session.objects = ObjectCache()
    session.builds, session.build_folders = {}, {}
    for crate in session.crates:
        saved = record.crates.get(crate.key)
        if saved is None:
            raise HandoverError(f"crate {crate.key} was not part of its build")
        crate.compiled_at = saved["compiled_at"]
        if crate.kind == "proc-macro":
            continue
        folder = Path(saved["folder"])
        session.build_folders[crate.key] = folder
        session.builds[crate.key] = session.objects.load(folder)
        session.builds[crate.key].layouts(crate.name)
        prepare_patch_scope(session.builds[crate.key].objects)
    with open(session.target_dir / "app-symbols.pickle", "rb") as f:
        prior = pickle.load(f)  # written by this user's own engine (mode 0600)
    if not isinstance(prior, ProcessSymbols):
        raise HandoverError("its patch symbols are unreadable")
    proc = AdoptedProcess(record.app_pid, record.app_start)
    channel = PatchChannel(
        record.build_id, debug_dir=Path(record.debug_dir), reopen=(Path(record.socket), record.token)
    )
    session.running = RunningApp(
        proc, channel, 0, 0, 0, prior, EntryJumps(session.exe, 0, prior), record=record
    )
    hello = channel.accept(record.app_pid, RECONNECT_TIMEOUT_S, lambda: proc.poll() is None)
    if hello.last_seq != record.seq:
        raise HandoverError(
            f"it applied patch {hello.last_seq}, but its record ends at patch {record.seq} "
            "(the engine died while patching)"
        )
    if hello.mode != record.runtime:
        raise HandoverError(f"its runtime says it is {hello.mode}, but it was {record.runtime}")
    slide = hello.slide(session.exe.address(ANCHOR))
    running = session.running
    running.slide, running.seq, running.runtime = slide, record.seq, record.runtime
    running.region_next = record.region_next or hello.region_start
    running.region_end = hello.region_start + hello.region_size
    running.jumps = EntryJumps(session.exe, slide, prior)
    session.on_event(
        {
            "event": "app-adopted",
            "pid": proc.pid,
            "executable": record.executable,
            "runtime": record.runtime,
            "seq": record.seq,
            "stop": channel.stop_mode,
        }
    )
    if record.output:
        app_watch.follow_output(session, OutputFiles.at(record.output), proc, from_end=True)
    threading.Thread(target=app_watch.watch_exit, args=(session, proc), daemon=True).start()
    save(session)
    return proc.pid


def spawn_reaper(target_dir: Path, grace_s: float) -> None:
    """After an editor's language server exits: stops the app it left running unless a new
    engine re-attached within `grace_s` (a window reload does; closing the editor does not)."""
    subprocess.Popen(
        [sys.executable, "-m", "hotline.engine.app.handover", str(target_dir), str(grace_s)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # outlives the server and its process group
    )


def _reap(target_dir: Path, grace_s: float) -> None:
    import time

    from hotline.engine.app.engine_lock import EngineLock

    time.sleep(grace_s)
    lock = EngineLock(target_dir / "engine.lock")
    if lock.acquire() is not None:
        return  # an engine owns the app again
    try:  # no engine can start meanwhile: the lock is held
        _, app = app_record.read(target_dir / "app.json")
        app_record.clear(target_dir / "app.json")
        if app is not None:
            app_record.stop(*app)
    finally:
        lock.release()


if __name__ == "__main__":
    _reap(Path(sys.argv[1]), float(sys.argv[2]))
