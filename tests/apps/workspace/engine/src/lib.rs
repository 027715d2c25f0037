//! A library crate of the workspace: plain, generic and stateful code the app calls.
use std::cell::Cell;
use std::fmt::Display;
use std::sync::atomic::{AtomicUsize, Ordering};

pub static CALLS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static PER_THREAD: Cell<u32> = const { Cell::new(0) };
}

pub fn label() -> String {
    let calls = CALLS.fetch_add(1, Ordering::SeqCst) + 1;
    let mine = PER_THREAD.with(|c| {
        c.set(c.get() + 1);
        c.get()
    });
    format!("lib-v1 calls={calls} tls={mine}")
}

pub fn wrap<T: Display>(value: T) -> String {
    format!("[{value}]")
}
