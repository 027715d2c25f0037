"""Link: the patch linker for a fixed address near the executable, the executable's symbols, debug ELF and first-call stubs. ELF and x86-64 specifics live here."""
