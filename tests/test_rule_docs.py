"""Every rule id the engine reports has a section in docs/rude-edits.md where the editors'
link lands: a diagnostic's code links to `rude-edits.md#hlNNNN` (lsp/diagnostics.py), so the
section's heading must be exactly `HLNNNN` or carry that anchor itself."""

from __future__ import annotations

import re

from hotline import REPO_ROOT


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_each_rule_the_engine_reports_has_a_section_its_link_lands_on() -> None:
    sources = "\n".join(p.read_text() for p in (REPO_ROOT / "server" / "hotline").rglob("*.py"))
    rules = sorted(set(re.findall(r"\bHL1\d{3}\b", sources)))
    doc = (REPO_ROOT / "docs" / "rude-edits.md").read_text()
    anchors = set(re.findall(r'<a id="(hl\d{4})"></a>', doc))
    anchors |= {_slug(h) for h in re.findall(r"^#+ (.*)$", doc, re.M)}
    assert len(rules) >= 20, rules  # HL1000-HL1013 and HL1094-HL1099
    assert [r for r in rules if r.lower() not in anchors] == []
