// A library crate built position-independent: its thread-locals are reached through
// __tls_get_addr, general-dynamic (R_X86_64_TLSGD) and local-dynamic (R_X86_64_TLSLD +
// R_X86_64_DTPOFF32). tests/test_engine_patch_link.py
use std::cell::Cell;

thread_local! { pub static HITS: Cell<u64> = const { Cell::new(0) }; }
thread_local! { static LAZY: Cell<u64> = Cell::new(std::process::id() as u64); }

#[inline(never)]
pub fn bump() -> u64 {
    HITS.with(|h| {
        h.set(h.get() + 1);
        h.get()
    })
}

#[inline(never)]
pub fn lazy() -> u64 {
    LAZY.with(|h| h.get())
}
