//! A dependency outside the workspace: `[profile.dev.package."*"]` builds it at opt-level 3.

pub fn scale(x: u64) -> u64 {
    x * 7
}
