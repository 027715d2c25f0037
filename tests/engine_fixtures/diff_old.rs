// The running build of tests/test_engine_object_diff.py; diff_new.rs is the edit.

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
    "hello"
}

#[inline(never)]
pub fn logic(x: u32) -> u32 {
    x.wrapping_add(1)
}

#[inline(never)]
pub fn removed_fn() -> u32 {
    5
}
