"""rustc JSON diagnostics -> LSP diagnostics, grouped per file URI, and their publication."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import TYPE_CHECKING

from lsprotocol import types
from pygls.uris import from_fs_path

from hotline import REPO_ROOT
from hotline.engine.analyse.demangle import demangle
from hotline.lsp import lenses

if TYPE_CHECKING:
    from hotline.lsp.core import HotlineLanguageServer

_SEVERITY = {
    "error": types.DiagnosticSeverity.Error,
    "error: internal compiler error": types.DiagnosticSeverity.Error,
    "warning": types.DiagnosticSeverity.Warning,
    "note": types.DiagnosticSeverity.Information,
    "help": types.DiagnosticSeverity.Hint,
}
ERROR_CODE_URL = "https://doc.rust-lang.org/error_codes/{}.html"
RUDE_EDITS_DOC = REPO_ROOT / "docs" / "rude-edits.md"
# Diagnostic.source: who reports it. rustc's own diagnostics from Hotline's builds, next to
# rust-analyzer's (source "rustc" or "rust-analyzer"), and Hotline's rules (code HL....).
RUSTC_SOURCE = "hotline (rustc)"
HOTLINE_SOURCE = "hotline"


_ITEM = re.compile(r"\b(?:struct|enum|union|static(?:\s+mut)?|type|trait)\s+(?P<name>[A-Za-z_][A-Za-z0-9_]*)")
_FN = re.compile(r"\bfn\s+[A-Za-z_][A-Za-z0-9_]*")


def _item_columns(text: str, name: str | None) -> tuple[int, int]:
    """1-based [start, end) columns on a declaration line to underline: the name of the type or
    static (`name`, else the word after its keyword), or a function's signature up to its body."""
    if m := _FN.search(text):
        end = text.find("{", m.end())
        signature_end = len(text[:end].rstrip()) if end >= 0 else len(text.rstrip())
        start = len(text) - len(text.lstrip())  # from `pub`, `async`, ... if any
        return start + 1, signature_end + 1
    if name and (m := re.search(rf"\b{re.escape(name)}\b", text)):
        return m.start() + 1, m.end() + 1
    if m := _ITEM.search(text):
        return m.start("name") + 1, m.end("name") + 1
    start = len(text) - len(text.lstrip())
    return start + 1, len(text.rstrip()) + 1


def rude_edit_diagnostic(edit: dict, crate_dir: Path | None = None) -> dict:
    """An engine rude edit (rule, severity, message, file, line) in rustc's diagnostic shape.
    Its span covers the item's name (a type, a static) or a function's signature, read from
    the file; an error's message says that a restart is required."""
    line = edit.get("line") or 1
    columns = (1, 1)
    if crate_dir is not None and edit.get("file"):
        with contextlib.suppress(OSError, IndexError):
            text = (crate_dir / edit["file"]).read_text(errors="replace").splitlines()[line - 1]
            symbol = edit.get("symbol")
            name = lenses.last_segment(demangle(symbol)) if symbol else None
            columns = _item_columns(text, name)
    span = {
        "file_name": edit["file"],
        "line_start": line,
        "line_end": line,
        "column_start": columns[0],
        "column_end": columns[1],
        "is_primary": True,
        "label": None,
    }
    message = edit["message"]
    if edit["severity"] == "error" and "restart required" not in message:
        message += ": restart required"
    return {
        "message": message,
        "level": edit["severity"],
        "code": {"code": edit["rule"]},
        "spans": [span],
        "children": [],
    }


def span_range(span: dict) -> types.Range:
    """rustc spans are 1-based (line and column); LSP positions are 0-based."""
    return types.Range(
        start=types.Position(line=max(0, span["line_start"] - 1), character=max(0, span["column_start"] - 1)),
        end=types.Position(line=max(0, span["line_end"] - 1), character=max(0, span["column_end"] - 1)),
    )


def file_uri(crate_dir: Path, file_name: str) -> str:
    return from_fs_path(str((crate_dir / file_name).resolve())) or ""


def to_lsp(diag: dict, crate_dir: Path) -> tuple[str, types.Diagnostic] | None:
    """The LSP form of one rustc diagnostic and the URI of its file (None when it has no span)."""
    spans = diag.get("spans") or []
    primary = next((s for s in spans if s.get("is_primary")), spans[0] if spans else None)
    if primary is None:
        return None
    message = diag.get("message", "")
    if primary.get("label"):
        message += f"\n{primary['label']}"
    related = []
    for span in spans:
        if span is primary:
            continue
        related.append(
            types.DiagnosticRelatedInformation(
                location=types.Location(uri=file_uri(crate_dir, span["file_name"]), range=span_range(span)),
                message=span.get("label") or diag.get("message", ""),
            )
        )
    for child in diag.get("children") or []:
        child_spans = child.get("spans") or []
        if not child_spans:
            message += f"\n{child.get('level', 'note')}: {child.get('message', '')}"
        for span in child_spans:
            text = child.get("message", "")
            if span.get("suggested_replacement") is not None:
                text += f": `{span['suggested_replacement']}`"
            related.append(
                types.DiagnosticRelatedInformation(
                    location=types.Location(
                        uri=file_uri(crate_dir, span["file_name"]), range=span_range(span)
                    ),
                    message=f"{child.get('level', 'note')}: {text}",
                )
            )
    code = (diag.get("code") or {}).get("code")
    result = types.Diagnostic(
        range=span_range(primary),
        message=message,
        severity=_SEVERITY.get(diag.get("level", "error"), types.DiagnosticSeverity.Error),
        source=RUSTC_SOURCE,
        related_information=related or None,
    )
    if code:
        result.code = code
        if code.startswith("E"):
            result.code_description = types.CodeDescription(href=ERROR_CODE_URL.format(code))
        elif code.startswith("HL"):
            result.source = HOTLINE_SOURCE
            result.code_description = types.CodeDescription(href=f"{RUDE_EDITS_DOC.as_uri()}#{code.lower()}")
    return file_uri(crate_dir, primary["file_name"]), result


def group_by_uri(diags: list[dict], crate_dir: Path) -> dict[str, list[types.Diagnostic]]:
    out: dict[str, list[types.Diagnostic]] = {}
    seen: set[tuple] = set()
    for diag in diags:
        converted = to_lsp(diag, crate_dir)
        if converted is None:
            continue
        uri, d = converted
        key = (uri, d.range.start.line, d.range.start.character, d.message)
        if key in seen:  # rustc repeats some warnings per target
            continue
        seen.add(key)
        out.setdefault(uri, []).append(d)
    return out


def publish(ls: HotlineLanguageServer, rustc: list[dict], own: list[dict] | None = None) -> None:
    """Publishes the diagnostics of a build or patch, rustc's and Hotline's own (HL rules, in
    rustc's shape); clears files that had some and no longer do. rustc's warnings only with
    the setting rustcWarnings: rust-analyzer reports them already, and they block nothing."""
    assert ls.crate_dir is not None
    ls.diagnostics = (rustc, own or [])
    if not ls.rustc_warnings:
        rustc = [d for d in rustc if d.get("level", "").startswith("error")]
    groups = group_by_uri(rustc + (own or []), ls.crate_dir)
    for uri in ls.published - groups.keys():
        ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))
    for uri, items in groups.items():
        ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=items))
    ls.published = set(groups)
