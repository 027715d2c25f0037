//! A library only the proc-macro uses: cargo builds it for the host alone, without debug info.

pub fn text() -> &'static str {
    "macro-1"
}
