//! A module whose file src/main.rs names with `#[path]`.

pub fn word() -> String {
    "path-1".to_string()
}
