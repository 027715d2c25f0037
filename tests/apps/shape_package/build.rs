//! Generates `$OUT_DIR/gen.rs`, which src/main.rs includes.
use std::path::Path;

fn main() {
    let out = std::env::var("OUT_DIR").unwrap();
    let code = "pub fn generated() -> &'static str {\n    \"gen-1\"\n}\n";
    std::fs::write(Path::new(&out).join("gen.rs"), code).unwrap();
    println!("cargo:rerun-if-changed=build.rs");
}
