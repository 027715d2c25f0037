"""Which functions an object's code and data name: the targets of its relocations.

A function no relocation in code or data names (no call, jump, vtable entry or function
pointer) is dead as a copy of its own: the optimizer inlined it everywhere it is used, a
`fn speed() -> f32 { 2.5 }` folded into its callers at opt-level >= 1. Its copy's
first-call flag can never be set, so its receipt (receipts.py) must not say "not called
since the patch": its code runs, if at all, inside the copies it was inlined into.
Relocations in debug info and `.eh_frame`, and a function's references to itself, do not
count.
"""

from __future__ import annotations

from hotline.engine.link.elf_objects import STT_FUNC, STT_SECTION, ObjectFile


def referenced_functions(obj: ObjectFile) -> set[str]:
    """The functions (defined here or elsewhere) that `obj`'s code and data refer to."""
    in_section: dict[int, list[str]] = {}
    for s in obj.symbols:
        if s.type == STT_FUNC and s.defined and s.name:
            in_section.setdefault(s.shndx, []).append(s.name)
    out: set[str] = set()
    for sec in obj.sections.values():
        if not sec.alloc or sec.name == ".eh_frame" or not sec.relocs:
            continue
        own = in_section.get(sec.index, [])
        for r in sec.relocs:
            target = obj.symbols[r.sym]
            if target.type == STT_SECTION:  # LLVM names a local target by its section
                out.update(n for n in in_section.get(target.shndx, ()) if n not in own)
            elif target.name and target.name not in own:
                out.add(target.name)
    return out
