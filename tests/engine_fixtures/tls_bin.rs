// A binary crate: rustc reaches its statics PC-relative (R_X86_64_PC32) and its
// thread-locals through local-exec TLS (R_X86_64_TPOFF32). tests/test_engine_patch_link.py
use std::cell::Cell;

thread_local! { static HITS: Cell<u64> = const { Cell::new(0) }; }
static mut OLD_STATIC: u64 = 7;
static mut NEW_STATIC: [u64; 4] = [9; 4];

#[inline(never)]
pub fn bump() -> u64 {
    HITS.with(|h| {
        h.set(h.get() + 1);
        h.get()
    })
}

#[inline(never)]
pub fn touch() -> u64 {
    unsafe {
        OLD_STATIC += 1;
        NEW_STATIC[1] += 1;
        OLD_STATIC + NEW_STATIC[1]
    }
}

#[inline(never)]
pub fn greet() -> usize {
    "a string constant".len() + std::process::id() as usize
}

fn main() {
    println!("{} {} {}", bump(), touch(), greet());
}
