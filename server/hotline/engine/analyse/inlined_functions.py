"""Which functions the optimizer inlined into a function's body, from its DWARF.

At opt-level >= 1 an edited function's new code often runs only inside other copies: a
closure inlined into an instance of `Option::map`, a helper inlined into its caller. Its
own copy may never be called, yet its new code runs. Receipts (receipts.py) need that to
say `ran` rather than a false "not called since the patch": every DW_TAG_inlined_subroutine
below a function's entry, at any depth, names a function whose code that copy carries.
"""

from __future__ import annotations

import struct

from hotline.engine.analyse.dwarf_reader import DwarfFormatError
from hotline.engine.analyse.function_abi import FunctionEntries

_NESTING = frozenset({"DW_TAG_inlined_subroutine", "DW_TAG_lexical_block"})


def inlined_functions(functions: FunctionEntries, symbol: str) -> set[str]:
    """The linkage names of the functions inlined into `symbol`'s body (empty if it has no
    debug info or none was inlined)."""
    try:
        found = functions.find(symbol)
        if found is None:
            return set()
        reader = functions.reader
        out: set[str] = set()
        stack = list(reader.children(found[0]))
        while stack:
            die = stack.pop()
            if die.tag not in _NESTING:
                continue
            if die.tag == "DW_TAG_inlined_subroutine":
                origin = die
                for _ in range(3):  # its abstract entry, maybe a method's declaration
                    ref = origin.attrs.get("DW_AT_abstract_origin", origin.attrs.get("DW_AT_specification"))
                    if not isinstance(ref, int):
                        break
                    origin = reader.die(ref)
                    name = origin.attrs.get("DW_AT_linkage_name")
                    if isinstance(name, str):
                        out.add(name)
                        break
            stack += reader.children(die)
        return out
    except (DwarfFormatError, IndexError, KeyError, ValueError, struct.error):
        return set()  # debug info this reader does not understand: no carrier is claimed
