//! The package's library, which the binary of the same name uses as `shapes::`.

pub fn library_word() -> String {
    "lib-1".to_string()
}
