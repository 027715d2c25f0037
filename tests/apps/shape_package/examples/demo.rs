//! An example: `cargo run --example demo` runs it.

fn main() {
    println!("demo");
}
