//! A target-specific dependency of the app (`[target.'cfg(target_os = "linux")'.dependencies]`).

pub fn word() -> String {
    "linux-1".to_string()
}
