//! An edited function that the optimizer inlines into closures run by generic functions
//! of another crate (`Option::map`, an iterator's `sum`), instantiated in this crate
//! (issue 25, shape 2): the instances carry the edit, so they are what must be redirected.
//! `offset`, called by a closure, is folded into `step` as a constant.

use std::io::Write;

fn bump(x: u64) -> u64 {
    x + 1
}

/// A constant the optimizer folds into `step`: nothing calls its own copy.
fn offset() -> u64 {
    1003
}

#[inline(never)]
fn step(n: u64) -> u64 {
    let a: u64 = (0..n % 10).map(|x| bump(x)).sum();
    let b = Some(n).map(|x| bump(x) * 2).unwrap_or(0);
    a + b + Some(n).map(|_| offset()).unwrap_or(0)
}

fn main() {
    let mut n = 0u64;
    loop {
        n += 1;
        println!("n={n} v={}", step(n));
        std::io::stdout().flush().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
