"""rustc JSON diagnostics -> LSP diagnostics, grouped per file URI."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types
from pygls.uris import from_fs_path

from hotline import REPO_ROOT

_SEVERITY = {
    "error": types.DiagnosticSeverity.Error,
    "error: internal compiler error": types.DiagnosticSeverity.Error,
    "warning": types.DiagnosticSeverity.Warning,
    "note": types.DiagnosticSeverity.Information,
    "help": types.DiagnosticSeverity.Hint,
}
ERROR_CODE_URL = "https://doc.rust-lang.org/error_codes/{}.html"
RUDE_EDITS_DOC = REPO_ROOT / "docs" / "rude-edits.md"


def rude_edit_diagnostic(edit: dict) -> dict:
    """An engine rude edit (rule, severity, message, file, line) in rustc's diagnostic shape."""
    line = edit.get("line") or 1
    span = {
        "file_name": edit["file"],
        "line_start": line,
        "line_end": line,
        "column_start": 1,
        "column_end": 1,
        "is_primary": True,
        "label": None,
    }
    return {
        "message": f"{edit['message']}",
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
        source="rustc (hotline)",
        related_information=related or None,
    )
    if code:
        result.code = code
        if code.startswith("E"):
            result.code_description = types.CodeDescription(href=ERROR_CODE_URL.format(code))
        elif code.startswith("HL"):
            result.source = "hotline"
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
