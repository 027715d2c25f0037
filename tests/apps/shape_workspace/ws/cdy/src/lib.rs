//! A library member built as crate-type = ["cdylib", "lib"].

pub fn word() -> String {
    "cdy-1".to_string()
}
