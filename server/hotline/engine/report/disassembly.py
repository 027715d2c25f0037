"""What a patch changed, as code: old and new machine code of a function, diffed.

Objects are disassembled before linking, so relocation sites still hold zeros; each one is
annotated with the symbol it refers to, which is what changed more often than not.
"""

from __future__ import annotations

import difflib

from capstone import CS_ARCH_X86, CS_MODE_64, Cs

from hotline.engine.analyse.demangle import demangle
from hotline.engine.analyse.object_diff import relocation_target
from hotline.engine.link.elf_objects import STT_FUNC, ObjectFile

_DISASSEMBLER = Cs(CS_ARCH_X86, CS_MODE_64)


def function_listing(objects: list[ObjectFile], symbol: str) -> list[str]:
    """The function's instructions, one per line, relocation targets named; [] if absent."""
    for obj in objects:
        for sym in obj.symbols:
            if sym.name == symbol and sym.type == STT_FUNC and sym.shndx in obj.sections:
                sec = obj.sections[sym.shndx]
                size = sym.size or sec.size - sym.value
                code = sec.data[sym.value : sym.value + size]
                relocs = {
                    r.offset - sym.value: r for r in sec.relocs if sym.value <= r.offset < sym.value + size
                }
                lines = []
                for insn in _DISASSEMBLER.disasm(code, 0):
                    text = f"{insn.mnemonic} {insn.op_str}".strip()
                    targets = [
                        demangle(relocation_target(obj, relocs[o].sym))
                        for o in range(insn.address, insn.address + insn.size)
                        if o in relocs
                    ]
                    lines.append(text + (f"    ; {', '.join(targets)}" if targets else ""))
                return lines
    return []


def function_diff(old: list[ObjectFile], new: list[ObjectFile], symbol: str) -> str:
    """A unified diff of the function's old and new instructions."""
    before, after = function_listing(old, symbol), function_listing(new, symbol)
    name = demangle(symbol)
    return "\n".join(
        difflib.unified_diff(before, after, f"{name} (running)", f"{name} (patched)", lineterm="", n=2)
    )
