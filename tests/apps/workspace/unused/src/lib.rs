//! A workspace member the app does not depend on: edits here patch nothing.
pub fn nothing() -> u32 {
    0
}
