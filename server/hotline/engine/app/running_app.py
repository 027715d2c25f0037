"""The app a session patches: its process, channel and patch region, and what runs along with it."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

from hotline.engine.analyse.entry_jumps import EntryJumps
from hotline.engine.app.app_output import Follower
from hotline.engine.app.app_record import AppRecord
from hotline.engine.app.channel import PatchChannel
from hotline.engine.app.returned_frames import LiveFrames
from hotline.engine.link.debug_elf import DebugInfoWriter
from hotline.engine.link.patch_link import ProcessSymbols
from hotline.engine.report.receipts import Receipts


@dataclass
class RunningApp:
    proc: subprocess.Popen
    channel: PatchChannel
    slide: int
    region_next: int
    region_end: int
    prior: ProcessSymbols
    jumps: EntryJumps
    seq: int = 0
    debug: DebugInfoWriter | None = None  # debug ELFs and perf map, written after each patch
    runtime: str = "linked"  # "injected": preloaded into an app that does not link the runtime crate
    record: AppRecord | None = None  # what the next engine needs to re-attach (handover.py)
    output: Follower | None = None  # the app's output files, followed into `app-output` events
    retrying: bool = False  # pending entry jumps are being retried (jump_retry.py)
    receipts: Receipts | None = None  # which edited functions ran since their patch
    live: LiveFrames | None = None  # the last patch's HL1012 functions, looked for again after they ran

    def stop_followers(self) -> None:
        """Stops what works on after a patch: debug info, receipts, looks for live frames."""
        if self.debug is not None:
            self.debug.close()
        if self.receipts is not None:
            self.receipts.close()
        if self.live is not None:
            self.live.stop()
