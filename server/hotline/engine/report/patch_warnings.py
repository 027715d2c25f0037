"""What a patch tells the user besides `patched`: where the patched functions are declared,
and the warnings about old code that keeps running old versions (HL1007, HL1008, HL1009;
HL1012 is live_frames.py).

Each is placed at the function's declaration, read from the debug info of the build that
has it, so an editor can show it on the right line.
"""

from __future__ import annotations

from pathlib import Path

from hotline.engine.analyse.demangle import demangle
from hotline.engine.analyse.entry_jumps import JumpPlan
from hotline.engine.analyse.object_cache import Build
from hotline.engine.analyse.object_diff import FunctionChanges
from hotline.engine.build.workspace import namespace


def declared_at(builds: dict[str, Build], symbol: str) -> tuple[str, int] | None:
    """Declaration file and line of a function, from the debug info of the build that has it."""
    for key, build in builds.items():
        where = build.layouts(namespace(key)).functions.get(symbol)
        if where is not None:
            return where
    return None


def in_app_sources(builds: dict[str, Build], symbol: str) -> bool:
    """Declared in the app's sources, not in the standard library's or a registry crate's:
    a generic instance of `core` or of a dependency, compiled into the app's crate, is not."""
    where = declared_at(builds, symbol)
    return where is not None and not where[0].startswith("/rustc/") and "/.cargo/" not in where[0]


def locations(builds: dict[str, Build], symbols: list[str]) -> list[dict]:
    """Declaration file and line of each patched function, from the debug info."""
    out = []
    for symbol in symbols:
        where = declared_at(builds, symbol)
        if where is not None:
            out.append({"symbol": symbol, "function": demangle(symbol), "file": where[0], "line": where[1]})
    return out


def warning(crate_dir: Path, builds: dict[str, Build], rule: str, symbol: str, message: str) -> dict:
    """A warning about a function, at its declaration (relative to the crate directory,
    as events give files) when the debug info knows it."""
    out = {"rule": rule, "severity": "warning", "symbol": symbol, "message": message}
    where = declared_at(builds, symbol)
    if where is not None:
        path = Path(where[0])
        out["file"] = str(path.relative_to(crate_dir)) if path.is_relative_to(crate_dir) else where[0]
        out["line"] = where[1]
    return out


def signature_changes(
    before: dict[str, Build], after: dict[str, Build], changes: FunctionChanges
) -> list[str]:
    """Functions whose parameter or return types changed: a new symbol under rustc's
    legacy mangling (its hash covers the signature), the same one under v0 mangling
    (then the debug info tells). Their old entries must not jump to the new code."""
    removed = {demangle(n) for n in changes.removed}
    out = [n for n in changes.added if demangle(n) in removed]
    for key in after:
        old = before[key].layouts(namespace(key)).signatures
        new = after[key].layouts(namespace(key)).signatures
        out += [n for n in changes.changed if n in old and n in new and old[n] != new[n]]
    return out


def signature_warnings(crate_dir: Path, builds: dict[str, Build], resigned: list[str]) -> list[dict]:
    """HL1007 for each function of the user's sources whose signature changed; the generic
    instances of other crates renamed with them (`Iterator::sum<…{closure}>`) are counted in
    one warning, not listed one by one."""

    mine = [s for s in resigned if in_app_sources(builds, s)]
    out = [
        warning(
            crate_dir,
            builds,
            "HL1007",
            symbol,
            f"the signature of {demangle(symbol)} changed: code compiled before the patch keeps "
            "calling the old version; callers compiled with the patch call the new one",
        )
        for symbol in mine
    ]
    others = [demangle(s) for s in resigned if s not in mine]
    if others:
        names = ", ".join(others[:3]) + (", …" if len(others) > 3 else "")
        message = (
            f"{len(others)} generic instances changed their signature with the edit ({names}): "
            "code compiled before the patch keeps calling the old ones"
        )
        out.append({"rule": "HL1007", "severity": "warning", "message": message})
    return out


def abi_warnings(
    crate_dir: Path, builds: dict[str, Build], changes: FunctionChanges, reshaped: dict[str, str]
) -> list[dict]:
    """HL1007 for each patched function whose ABI changed (function_abi.py): its old
    callers are not sent into the new code. Named on the functions the user edited; the
    copies compiled for their types (closures, instances such as `drop_in_place<…>`) are
    listed in the first such message, not as warnings of their own."""
    edited = [n for n in changes.edited if n in reshaped]
    others = [n for n in reshaped if n not in edited]
    out = []
    for i, symbol in enumerate(edited or others):
        message = (
            f"{demangle(symbol)}: {reshaped[symbol]}, so code compiled before the patch (a "
            "running loop, a stored closure or future) keeps calling the old version; callers "
            "compiled with the patch call the new one"
        )
        if i == 0 and edited and others:
            names = ", ".join(demangle(n) for n in others[:4]) + (", …" if len(others) > 4 else "")
            message += f". The same holds for {len(others)} copies compiled for its types: {names}"
        out.append(warning(crate_dir, builds, "HL1007", symbol, message))
    return out


def jump_warnings(
    crate_dir: Path, builds: dict[str, Build], changes: FunctionChanges, plan: JumpPlan, report: dict
) -> list[dict]:
    """HL1008 for an edited function whose old entry was not redirected, HL1009 when
    no entry jump could be written (the patch then applies at safe points only)."""
    out = []
    if report.get("error"):
        out.append(
            {
                "rule": "HL1009",
                "severity": "warning",
                "message": f"old code was not redirected to the new code ({report['error']}): "
                "this patch takes effect only where hotline::call reaches it until its entry jumps "
                "are written (retried in a moment and with the next patch; jumps-landed says when)",
            }
        )
    edited = set(changes.changed)
    for symbol, why in plan.skipped.items():
        if symbol in edited:
            message = (
                f"the old entry of {demangle(symbol)} is not redirected: {why}; callers are "
                "relinked, but a function pointer, trait object or thread loop made before the "
                "patch keeps running the old version"
            )
            out.append(warning(crate_dir, builds, "HL1008", symbol, message))
    # A jump planned but not written: its callers were not relinked (a jump was planned), so
    # code compiled before the patch keeps calling the old copy until the jump lands.
    unwritten = {
        "busy": (
            "a thread was executing its first bytes during the patch",
            " (jumps-landed says when it lands)",
        ),
        "held": (
            "a debugger is attached and a breakpoint (0xCC) lies in its first bytes, which a jump "
            "would overwrite (and the debugger later restore over it)",
            ", and lands once that breakpoint is removed (jumps-landed says when)",
        ),
    }
    for key, (why, lands) in unwritten.items():
        sites = set(report.get(key, []))
        for symbol in dict.fromkeys(name for name, site, _ in plan.jumps if site in sites):
            if symbol in edited:
                message = (
                    f"the old entry of {demangle(symbol)} is not redirected: {why}; code compiled "
                    "before the patch keeps calling the old version until the jump is written: it "
                    f"is retried in a moment and with the next patch{lands}"
                )
                out.append(warning(crate_dir, builds, "HL1008", symbol, message))
    return out


def running_main(crate: str, changes: FunctionChanges) -> dict | None:
    """HL1010 when the binary's `main` changed: it is running and never returns, so its new
    code never runs. The edit may be the compiler's: at opt-level >= 1 a function is inlined
    into `main` and changes only there. With nothing else edited nothing of the patch would
    ever run, so it is refused (`refuse`); otherwise the rest is patched, with a warning."""
    main = f"{crate}::main"
    symbol = next((n for n in changes.edited if demangle(n) == main), None)
    if symbol is None:
        return None
    others = [n for n in changes.edited if n != symbol]
    message = (
        f"{main} changed (an edit to main, or to a function the compiler inlined into it): "
        "main is running and never returns, so its new code never runs"
    )
    return {"symbol": symbol, "message": message, "refuse": not others}
