//! A second binary member, left out of `default-members`.

fn main() {
    println!("tool");
}
