//! A library member built as crate-type = ["staticlib", "rlib"].

pub fn word() -> String {
    "sta-1".to_string()
}
