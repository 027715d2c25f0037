"""textDocument/codeLens: Run or Full rebuild on `main`, `patched in …` on the last patch's
functions, restart-required and refused lenses, each kept on its line while the user edits
(the words themselves are in lenses.py)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

from lsprotocol import types
from pygls.uris import to_fs_path

from hotline.lsp import lenses

if TYPE_CHECKING:
    from hotline.lsp.core import HotlineLanguageServer


def saved_texts(ls: HotlineLanguageServer, event: dict) -> dict[Path, str]:
    """The texts of the files a patch was built from (its functions' files, the saved file):
    its lenses are moved from these to the editor's current text."""
    files = {Path(loc["file"]).resolve() for loc in event.get("locations") or []}
    if ls.last_saved_uri:
        files.add(Path(to_fs_path(ls.last_saved_uri) or "").resolve())
    out = {}
    for file in files:
        with contextlib.suppress(OSError):
            out[file] = file.read_text()
    return out


def refused_texts(ls: HotlineLanguageServer, event: dict) -> dict[Path, str]:
    """The texts of the files a refusal's rude edits are in: its restart-required lenses
    are moved from these to the editor's current text."""
    out = {}
    for edit in event.get("rude_edits") or []:
        if edit.get("file") and ls.crate_dir is not None:
            file = (ls.crate_dir / edit["file"]).resolve()
            with contextlib.suppress(OSError):
                out[file] = file.read_text()
    return out


def refused_lines(
    ls: HotlineLanguageServer, uri: str, source: str, edits: list[dict]
) -> list[tuple[int, dict]]:
    """Where the rude edits of the last refusal that are in this file (`edits`) are in the
    editor's text: their 0-based lines followed through the edits made since the refusal
    (lines inserted above), without those whose own line was changed or deleted."""
    before = ls.refused_sources.get(Path(to_fs_path(uri) or "").resolve())
    lines = [r["line"] - 1 for r in edits]
    moved = lenses.follow_lines(before if before is not None else source, source, lines)
    return [(moved[r["line"] - 1], r) for r in edits if r["line"] - 1 in moved]


def patched_lines(ls: HotlineLanguageServer, uri: str, source: str) -> dict[int, list[str]]:
    """0-based line in the editor's text -> the last patch's edited functions declared there.
    Declaration lines come from the debug info (`locations`), else (a function the debug
    info did not place) from its name in the saved file; both are then followed through
    the edits made since the patch (lines inserted above), or dropped."""
    assert ls.last_patch is not None
    path = Path(to_fs_path(uri) or "").resolve()
    names = ls.last_patch["functions"] + ls.last_patch.get("added", [])
    located_anywhere = set()
    located: dict[int, list[str]] = {}
    for loc in ls.last_patch.get("locations") or []:
        if loc["function"] not in names:
            continue
        located_anywhere.add(loc["function"])
        if Path(loc["file"]).resolve() == path:
            located.setdefault(loc["line"] - 1, []).append(loc["function"])
    before = ls.patched_sources.get(path)
    missing = [n for n in names if n not in located_anywhere]
    if missing and (before is not None or not ls.patched_sources):
        for line, functions in lenses.function_lines(before or source, missing).items():
            located.setdefault(line, []).extend(f for f in functions if f not in located.get(line, []))
    return lenses.relocate(before if before is not None else source, source, located)


def live_frames_in(ls: HotlineLanguageServer, uri: str) -> list[dict]:
    """The last patch's live frames (HL1012) of functions declared in this file."""
    frames = ((ls.last_patch or {}).get("live_frames") or {}).get("frames") or []
    return [f for f in frames if f.get("file") and ls.is_file(uri, f["file"])]


def code_lenses(ls: HotlineLanguageServer, uri: str) -> list[types.CodeLens]:
    if not ls.in_crate(uri):
        return []
    source = ls.workspace.get_text_document(uri).source
    out: list[types.CodeLens] = []

    def lens(line: int, title: str, command: str, tooltip: str) -> None:
        rng = types.Range(
            start=types.Position(line=line, character=0), end=types.Position(line=line, character=0)
        )
        out.append(
            types.CodeLens(
                range=rng,
                command=types.Command(title=title, command=command, tooltip=tooltip),
                data={"tooltip": tooltip},  # vscode-languageclient drops Command.tooltip
            )
        )

    main_line = lenses.fn_line(source, "main")
    if main_line is not None:
        if ls.running:
            lens(main_line, lenses.REBUILD, "hotline.restart", lenses.REBUILD_TOOLTIP)
        else:
            lens(main_line, lenses.RUN, "hotline.run", lenses.RUN_TOOLTIP)
    if ls.last_patch is not None:
        for line, functions in sorted(patched_lines(ls, uri, source).items()):
            receipts = [ls.receipts.get(f, ("", ""))[0] for f in functions]
            title = lenses.patched_title(ls.last_patch["ms"], receipts)
            not_run = [m for f in functions if (m := ls.receipts.get(f, ("", ""))[1])]
            if not_run:
                tooltip = lenses.NOT_RUN_TOOLTIP.format(message=not_run[0])
                lens(line, title, "hotline.restart", tooltip)
            else:
                lens(line, title, "hotline.showLastPatch", lenses.PATCHED_TOOLTIP)
        for line, frame in lenses.live_frame_lines(source, live_frames_in(ls, uri)):
            tooltip = lenses.LIVE_FRAME_TOOLTIP.format(**frame)
            lens(line, lenses.live_frame_title(frame), "hotline.restart", tooltip)
    if ls.last_refused is not None:
        e = ls.last_refused
        here = [
            r
            for r in e.get("rude_edits", [])
            if r.get("file") and r.get("line") and ls.is_file(uri, r["file"])
        ]
        for line, r in refused_lines(ls, uri, source, here):
            tooltip = lenses.RESTART_REQUIRED_TOOLTIP.format(message=r["message"])
            lens(line, lenses.restart_required_title(r["rule"]), "hotline.restart", tooltip)
        if here:
            return out
        line = None
        if e.get("symbol"):
            from hotline.engine.analyse.demangle import demangle

            name = lenses.last_segment(demangle(e["symbol"]))
            line = lenses.fn_line(source, name) if name else None
        if line is None and uri == ls.last_saved_uri:
            line = 0
        if line is not None:
            lens(
                line,
                lenses.refused_title(e["rule"], e["reason"]),
                "hotline.showLastPatch",
                lenses.REFUSED_TOOLTIP.format(reason=e["reason"]),
            )
    return out
