//! Two functions whose opaque return types change size when an edit makes the returned
//! closure capture a value, called from a loop in `main` that never returns (issue 24):
//! the loop's old frame keeps calling them, and must never be sent into the new bodies.

use std::io::Write;
use std::time::Duration;

/// The even numbers of `v` (an `impl Iterator` built with `filter`).
fn picked(v: &[u64]) -> impl Iterator<Item = &u64> + '_ {
    v.iter().filter(|x| **x % 2 == 0)
}

/// A function that adds `i` (an `impl Fn`).
fn adder(i: u64) -> impl Fn(u64) -> u64 {
    move |x| x + i
}

fn main() {
    let v: Vec<u64> = (1..=10).collect();
    let mut kept: Vec<Box<dyn Fn(u64) -> u64>> = Vec::new();
    let mut n = 0u64;
    loop {
        n += 1;
        let sum: u64 = picked(&v).sum();
        kept.push(Box::new(adder(n)));
        if kept.len() > 4 {
            let _ = kept.remove(0);
        }
        let added: u64 = kept.iter().map(|f| f(1000)).sum();
        println!("n={n} sum={sum} added={added}");
        std::io::stdout().flush().unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
}
