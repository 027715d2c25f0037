"""The errors the engine raises to its front ends, and the patch linker's, which a plan turns
into a `patch-refused` verdict (patch_plan.py)."""

from __future__ import annotations


class HotlineError(Exception):
    """A failure the user must act on; the message says what to do."""


class EngineBusy(HotlineError):
    """Another engine owns this crate's build directory and app."""

    def __init__(self, message: str, engine_pid: int, app_pid: int | None) -> None:
        super().__init__(message)
        self.engine_pid, self.app_pid = engine_pid, app_pid


class InternalError(HotlineError):
    """A bug in Hotline; already reported as an `engine-error` event, with the log file."""


class PatchLinkError(Exception):
    """The objects cannot be linked against the running process; `rule` names why."""

    def __init__(self, rule: str, message: str, symbol: str | None = None) -> None:
        super().__init__(message)
        self.rule = rule
        self.symbol = symbol
