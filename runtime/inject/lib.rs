//! The Hotline runtime as a shared library, for apps that do not depend on it.
//!
//! The engine builds this crate once per toolchain and preloads it (`LD_PRELOAD`) into
//! an app whose executable does not link the runtime. Everything is the runtime crate's:
//! its `.init_array` constructor connects to the engine (it sees it is not inside the
//! executable and says `"mode": "injected"`, `runtime/src/program.rs`), and its
//! `#[no_mangle]` symbols (`dl_iterate_phdr`, the GDB JIT interface) are exported.
//!
//! The library carries its own copy of std. That is sound because nothing crosses
//! between the two copies but C: only the `#[no_mangle]` C functions are exported (a
//! cdylib hides every Rust symbol), so neither copy binds to the other's functions,
//! statics or thread-locals; no Rust value, allocation or panic passes between them (the
//! channel thread's panics are caught inside the library); both allocate through libc's
//! malloc and read the one libc environment.

// Linking the runtime is the whole point: without a use, rustc would not link it.
pub use hotline::patches_applied;
