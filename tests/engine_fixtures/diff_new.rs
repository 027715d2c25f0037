// The edit of diff_old.rs: every function moved down (these lines, and a new function
// with its own constant ahead of the others), one string constant changed behind its
// relocation (same length: the code bytes are identical), one body changed, one
// function removed.

#[inline(never)]
pub fn added_fn() -> &'static str {
    "a constant that comes first"
}

#[inline(never)]
pub fn stable(x: u32) -> u32 {
    x.wrapping_mul(3)
}

#[inline(never)]
pub fn calls_stable(x: u32) -> u32 {
    stable(x).wrapping_add(1)
}

#[inline(never)]
pub fn same_text() -> &'static str {
    "same words"
}

#[inline(never)]
pub fn greeting() -> &'static str {
    "hullo"
}

#[inline(never)]
pub fn logic(x: u32) -> u32 {
    x.wrapping_add(2)
}
