"""Edits a patch cannot apply safely ("rude edits"), each with a stable rule id (HL1001-HL1006).

Documented for users in docs/rude-edits.md. Errors refuse the patch (the app keeps its
last good code); warnings let it apply and say what will only take effect on restart.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from hotline.engine.analyse.demangle import demangle
from hotline.engine.analyse.object_cache import Build
from hotline.engine.analyse.object_diff import section_fingerprint
from hotline.engine.analyse.type_layouts import layout_changes
from hotline.engine.link.elf_objects import ObjectFile
from hotline.engine.link.patch_link import is_state_section


@dataclass(frozen=True)
class RudeEdit:
    rule: str
    severity: str  # "error" refuses the patch; "warning" lets it apply
    message: str
    symbol: str | None = None
    file: str | None = None
    line: int | None = None

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


def _statics_of(obj: ObjectFile) -> dict[str, tuple[str, int, bytes]]:
    """Each static's symbol -> (demangled path, size, content fingerprint)."""
    out = {}
    for si, sec in obj.sections.items():
        if sec.alloc and (sec.tls or is_state_section(sec.name)):
            named = obj.section_symbols(si)
            if named:
                out.setdefault(
                    named[0].name, (demangle(named[0].name), sec.size, section_fingerprint(obj, sec))
                )
    return out


def _statics(build: Build) -> dict[str, tuple[str, int, bytes]]:
    return build.merged("statics", _statics_of)


def _static_edits(old: Build, new: Build) -> list[RudeEdit]:
    before, after = _statics(old), _statics(new)
    gone = {}  # demangled path -> sizes of statics only the old build has (a changed type renames them)
    for symbol, (path, size, _) in before.items():
        if symbol not in after:
            gone.setdefault(path, []).append(size)
    edits = []
    for symbol, (path, size, fp) in after.items():
        if symbol in before:
            if before[symbol][2] != fp:
                edits.append(
                    RudeEdit(
                        "HL1005", "warning", f"static {path}: new initializer takes effect on restart", path
                    )
                )
        elif len(gone.get(path, ())) == 1:
            edits.append(
                RudeEdit(
                    "HL1004", "error", f"static {path}: type changed (size {gone[path][0]} → {size})", path
                )
            )
    return edits


def find_rude_edits(
    old: Build, new: Build, crate: str, allowed_types: frozenset[str] = frozenset()
) -> list[RudeEdit]:
    edits = []
    for change in layout_changes(old.layouts(crate), new.layouts(crate)):
        if change.type_name in allowed_types:
            continue
        rule = "HL1001" if change.crosses_safe_point else "HL1002"
        edits.append(RudeEdit(rule, "error", change.description, change.type_name, change.file, change.line))
    edits += _static_edits(old, new)
    return edits
