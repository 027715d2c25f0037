//! A library member built as crate-type = ["dylib"].

pub fn word() -> String {
    "dyl-1".to_string()
}
