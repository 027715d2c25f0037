"""Entry jumps a stop could not write, kept until one can (ARCHITECTURE.md §6).

A site a thread stayed inside (busy), one a debugger's breakpoint holds (held), or every
site of a stop that failed (HL1009) would otherwise leave its function on old code until
it is edited again. They stay pending, per app, in `pending-jumps.json` next to the app
record (so an engine that re-attaches keeps them), and go with the next stop: the next
patch's, or a retry the session makes a moment later (`RETRY_AFTER_S`). A pending jump of
a function that a later patch replaces again is dropped: that patch plans its own.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path

RETRY_AFTER_S = (1.0, 2.0, 4.0, 8.0)  # delays of the retries after a patch left jumps pending


@dataclass
class PendingJumps:
    path: Path
    jumps: list[tuple[str, int, int]] = field(default_factory=list)  # (function, site, target)

    @classmethod
    def load(cls, path: Path) -> PendingJumps:
        """The jumps an earlier engine left pending for the app it launched."""
        with contextlib.suppress(OSError, ValueError, TypeError):
            return cls(path, [(str(n), int(s), int(t)) for n, s, t in json.loads(path.read_text())])
        return cls(path)

    def save(self) -> None:
        if not self.jumps:
            self.path.unlink(missing_ok=True)
            return
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.jumps))
        tmp.replace(self.path)

    def clear(self) -> None:
        self.jumps = []
        self.save()

    def with_plan(
        self, planned: list[tuple[str, int, int]], replaced: set[str]
    ) -> list[tuple[str, int, int]]:
        """The jumps for the next stop: the patch's own (`planned`), then the pending ones
        of functions this patch does not replace again."""
        sites = {site for _, site, _ in planned}
        keep = [j for j in self.jumps if j[0] not in replaced and j[1] not in sites]
        return planned + keep

    def after_stop(self, sent: list[tuple[str, int, int]], report: dict) -> list[str]:
        """Keeps pending what the stop did not write (its report: busy and held sites, or
        an error for all of them); returns the functions of the pending jumps that landed."""
        if report.get("error") and not report.get("written"):
            missed = {site for _, site, _ in sent}
        else:
            missed = set(report.get("busy", [])) | set(report.get("held", []))
        before = {j[1] for j in self.jumps}
        self.jumps = [j for j in sent if j[1] in missed]
        self.save()
        return list(dict.fromkeys(n for n, site, _ in sent if site in before and site not in missed))

    def functions(self) -> list[str]:
        return list(dict.fromkeys(n for n, _, _ in self.jumps))
