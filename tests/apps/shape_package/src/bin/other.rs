//! A second binary, from src/bin/.

fn main() {
    println!("other");
}
