//! The engine's settings for this launch, read from the environment and removed from it.
//!
//! The engine passes `HOTLINE_SOCKET`, `HOTLINE_TOKEN`, `HOTLINE_BUILD_ID` and
//! `HOTLINE_DEBUG_DIR`, and, when it preloads the runtime, `HOTLINE_PRELOAD` (the entry
//! it added to `LD_PRELOAD`). [`take`] reads them and removes them, and that entry of
//! `LD_PRELOAD`, so that a child process the app spawns, or a program it execs, inherits
//! none of them: it is never injected, and never connects to the engine by mistake.
//!
//! Changing the environment races with any other thread reading it (C's `getenv` takes
//! no lock). [`take`] runs from the runtime's `.init_array` constructor, before `main`,
//! when the process has a single thread (only a constructor of another library that ran
//! earlier and spawned a thread could break that, and none of the C or Rust runtimes
//! does); std's own readers would be safe anyway, under std's environment lock.

use std::env;

/// Everything the engine told this process.
pub struct Settings {
    pub socket: String,
    pub token: String,
    pub build_id: String,
    pub debug_dir: Option<String>,
}

/// The variables the engine sets, all removed by [`take`].
const VARS: [&str; 5] = [
    "HOTLINE_SOCKET",
    "HOTLINE_TOKEN",
    "HOTLINE_BUILD_ID",
    "HOTLINE_DEBUG_DIR",
    "HOTLINE_PRELOAD",
];

/// Reads the engine's settings and removes them from the environment; None when the
/// process was not launched by the engine.
pub fn take() -> Option<Settings> {
    let var = |k: &str| env::var(k).ok().filter(|v| !v.is_empty());
    let settings = match (
        var("HOTLINE_SOCKET"),
        var("HOTLINE_TOKEN"),
        var("HOTLINE_BUILD_ID"),
    ) {
        (Some(socket), Some(token), Some(build_id)) => Some(Settings {
            socket,
            token,
            build_id,
            debug_dir: var("HOTLINE_DEBUG_DIR"),
        }),
        _ => None,
    };
    if let Some(entry) = var("HOTLINE_PRELOAD") {
        if let Ok(list) = env::var("LD_PRELOAD") {
            match without_entry(&list, &entry) {
                Some(rest) => env::set_var("LD_PRELOAD", rest),
                None => env::remove_var("LD_PRELOAD"),
            }
        }
    }
    for name in VARS {
        env::remove_var(name);
    }
    settings
}

/// `list` (an `LD_PRELOAD` value: entries separated by spaces or colons) without
/// `entry`; None when nothing is left.
fn without_entry(list: &str, entry: &str) -> Option<String> {
    let rest: Vec<&str> = list
        .split([' ', ':'])
        .filter(|e| !e.is_empty() && *e != entry)
        .collect();
    (!rest.is_empty()).then(|| rest.join(":"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_preload_entry_is_removed() {
        let ours = "/home/u/.cache/hotline/runtime-1/libhotline_inject.so";
        assert_eq!(without_entry(ours, ours), None);
        assert_eq!(
            without_entry(&format!("/a.so {ours}"), ours).as_deref(),
            Some("/a.so")
        );
        assert_eq!(
            without_entry(&format!("{ours}:/a.so  /b.so"), ours).as_deref(),
            Some("/a.so:/b.so")
        );
        assert_eq!(without_entry("/a.so", ours).as_deref(), Some("/a.so"));
    }
}
