//! Inlining at opt-level 1, for receipts: `bump` and the closure are inlined into `step`
//! (and recorded there), `speed` is folded into `step` as a constant (no record of it is
//! left), and `called` keeps a copy of its own that `entry` calls.

#[inline(never)]
pub fn step(n: u64) -> u64 {
    let b = Some(n).map(|x| bump(x) * 2).unwrap_or(0);
    b + speed()
}

pub fn speed() -> u64 {
    7
}

pub fn bump(x: u64) -> u64 {
    x.wrapping_mul(3) ^ (x >> 2)
}

#[inline(never)]
pub fn called() -> u64 {
    std::hint::black_box(5)
}

pub fn entry(n: u64) -> u64 {
    step(n) + called()
}
