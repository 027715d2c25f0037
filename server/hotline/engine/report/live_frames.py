"""Live frames (HL1012): replaced functions that some thread is still inside of.

An entry jump sends every new call of a function to its new code, but a thread already
inside the old copy goes on running it: a thread's own `loop`, or a `run()` that `main`
calls and that never returns, keeps the old code forever. The quiet stop that writes the
jumps (or, for a patch without jumps, one only to look) copies every thread's stack
(`thread_stop.py`, `frame_scan.py`); this module lists
the old copies to look for and turns what was found into one warning per function and
thread, at the function's declaration.

`main` is left to HL1010 (patch_warnings.running_main), which knows it without looking
and refuses a patch that changes main alone; HL1012 is every other function.
"""

from __future__ import annotations

from pathlib import Path

from hotline.engine.analyse.demangle import demangle
from hotline.engine.analyse.object_cache import Build
from hotline.engine.link.executable import Executable
from hotline.engine.link.patch_link import ProcessSymbols
from hotline.engine.report.patch_warnings import warning

RULE = "HL1012"


def old_copies(
    exe: Executable, slide: int, prior: ProcessSymbols, names: list[str]
) -> tuple[list[tuple[int, int]], list[str]]:
    """(start, end) of every old copy of `names` in the running process (the executable's,
    earlier patches'), and the function each belongs to; copies of unknown size are left
    out (a return address cannot be placed in them)."""
    frames: list[tuple[int, int]] = []
    owners: list[str] = []
    for name in dict.fromkeys(names):
        copies = [(a + slide, s) for a, s in exe.function_copies(name)]
        copies += [(a, prior.sizes.get(a, 0)) for a in prior.functions.get(name, [])]
        for start, size in copies:
            if size:
                frames.append((start, start + size))
                owners.append(name)
    return frames, owners


def report(
    crate_dir: Path,
    builds: dict[str, Build],
    owners: list[str],
    found: list[dict] | None,
    skip: set[str],
    why_unchecked: str | None,
) -> tuple[dict, list[dict]]:
    """The `live_frames` field of `patched` and the HL1012 warnings, from what the stop
    helper `found` (None: no stop looked, for `why_unchecked`). `skip`: functions another
    warning already covers (main, HL1010)."""
    if found is None:
        return {"checked": False, "why": why_unchecked or "no stop looked at the threads"}, []
    seen: dict[tuple[str, int], dict] = {}
    for hit in found:
        symbol = owners[hit["frame"]]
        if symbol not in skip:
            seen.setdefault((symbol, hit["tid"]), {"symbol": symbol, **hit})
    frames, warnings = [], []
    for (symbol, tid), hit in seen.items():
        name = demangle(symbol)
        short = name.rsplit("::", 1)[-1]
        # "running": its own code is executing; "called": a call it made has not returned
        message = (
            f"{name} is running on thread {hit['thread']} (tid {tid}) and has not returned: a loop "
            f"in it keeps running the old code until {short} returns; restart the app (r in "
            "hotline run, Hotline: Restart in the editor) to run the new code"
        )
        w = warning(crate_dir, builds, RULE, symbol, message)
        warnings.append(w)
        frame = {"function": name, "symbol": symbol, "thread": hit["thread"], "tid": tid}
        frames.append(frame | {k: w[k] for k in ("file", "line") if k in w})
    return {"checked": True, "frames": frames}, warnings
