"""Which old function entries may take a jump to their new code (x86-64).

An entry jump overwrites the first 5 bytes of a replaced function's old copy with
`jmp rel32` to its newest copy, so every caller reaches the new code: direct calls from
old code, vtables and function pointers made before the patch, threads that never pass a
safe point. The runtime writes the jumps with the other threads stopped and checks that
none of them is executing those 5 bytes (the window). What it cannot see at that moment is
decided here, from the old copy's machine code:

* a branch inside the function that targets bytes 1-4 would land mid-jump; one that
  targets byte 0 would enter the new code with a half-built frame;
* a call whose return address is in bytes 1-4 would return mid-jump, for a thread that is
  deeper in the callee during the patch;
* a `rep` string instruction in the window can be interrupted half done and resumed at its
  own address, which would then be the jump;
* a function shorter than the jump, or one that shares its address with another function
  (an alias, in the executable or in an earlier patch: LLVM merges identical functions at
  opt-level >= 2), cannot be redirected alone.

Such a function gets no entry jump; the patch scope then relinks its callers instead.
Indirect branches (a `match` jump table) are not followed: rustc does not place a
jump-table target at a function's first bytes, where the prologue is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from capstone import CS_ARCH_X86, CS_MODE_64, Cs

from hotline.engine.link.executable import Executable
from hotline.engine.link.patch_link import ProcessSymbols

JMP_SIZE = 5
_disassembler = Cs(CS_ARCH_X86, CS_MODE_64)


def entry_obstacle(code: bytes, address: int) -> str | None:
    """Why `jmp rel32` over the first bytes of the function `code` (at `address`) is unsafe."""
    if len(code) < JMP_SIZE:
        return f"it is too short for an entry jump ({len(code)} bytes)"
    end = address + JMP_SIZE
    decoded = 0
    for at, size, mnemonic, operand in _disassembler.disasm_lite(code, address):
        decoded += size
        following = at + size
        if mnemonic.startswith("call") and address < following < end:
            return f"a call returns to byte {following - address} of its entry"
        if at < end and mnemonic.startswith("rep"):
            return "its entry holds a repeated string instruction"
        branch = mnemonic.startswith(("j", "loop")) or mnemonic == "call"
        if branch and operand.startswith("0x"):
            target = int(operand, 16)
            if address <= target < end and not (mnemonic == "call" and target == address):
                return f"a branch at byte {at - address} targets byte {target - address} of its entry"
    if decoded < len(code):
        return f"its code cannot be disassembled past byte {decoded}"
    return None


@dataclass
class JumpPlan:
    """Entry jumps for one patch, and the functions that could not get one."""

    jumps: list[tuple[str, int, int]] = field(default_factory=list)  # (function, old entry, new)
    skipped: dict[str, str] = field(default_factory=dict)  # function -> why not


class EntryJumps:
    """Decides entry jumps for one launch of the app; the decision for an old copy never
    changes (its bytes do not), so it is made once."""

    def __init__(self, exe: Executable, slide: int, prior: ProcessSymbols) -> None:
        self.exe, self.slide, self.prior = exe, slide, prior
        self._obstacles: dict[int, str | None] = {}
        self._names_at: dict[int, set[str]] | None = None
        self._names_seen = 0  # how many patched functions _names_at covers

    def _copies(self, name: str) -> list[tuple[int, str | None]]:
        """(runtime address, obstacle or None) of every old copy of a function."""
        out = []
        for address, size in self.exe.function_copies(name):
            at = address + self.slide
            if at not in self._obstacles:
                if self.exe.functions_at.get(address, set()) - {name}:
                    self._obstacles[at] = "another function shares its address"
                else:
                    code = self.exe.code(address, size) if size else None
                    self._obstacles[at] = entry_obstacle(code, at) if code else "its size is unknown"
            out.append((at, self.prior.frozen.get(at, self._obstacles[at])))
        for at in self.prior.functions.get(name, []):
            if at not in self._obstacles:
                code = self.prior.code_bytes(at)
                if self._patched_names_at(at) - {name}:  # an alias, as LLVM merges at opt-level >= 2
                    self._obstacles[at] = "another function shares its address"
                else:
                    self._obstacles[at] = entry_obstacle(code, at) if code else "its size is unknown"
            out.append((at, self.prior.frozen.get(at, self._obstacles[at])))
        return out

    def _patched_names_at(self, address: int) -> set[str]:
        """The functions earlier patches placed at `address` (more than one: aliases)."""
        if self._names_at is None or self._names_seen != len(self.prior.sizes):
            self._names_at = {}
            for name, addresses in self.prior.functions.items():
                for at in addresses:
                    self._names_at.setdefault(at, set()).add(name)
            self._names_seen = len(self.prior.sizes)
        return self._names_at.get(address, set())

    def copies(self, name: str) -> list[int]:
        """Runtime addresses of every old copy of a function (executable, earlier patches)."""
        return [at for at, _ in self._copies(name)]

    def obstacle(self, name: str) -> str | None:
        """Why some old copy of `name` cannot take an entry jump; None if all can."""
        return next((reason for _, reason in self._copies(name) if reason), None)

    def plan(self, names: list[str], new: dict[str, int]) -> JumpPlan:
        """Jumps from every redirectable old copy of `names` to their `new` addresses."""
        out = JumpPlan()
        planned: set[int] = set()
        for name in names:
            if name not in new:
                continue
            for address, reason in self._copies(name):
                if reason is None and address in planned:  # a site is written once, or never
                    reason = "another function shares its address"
                if reason:
                    out.skipped.setdefault(name, reason)
                else:
                    planned.add(address)
                    out.jumps.append((name, address, new[name]))
        return out
