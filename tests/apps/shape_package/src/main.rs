//! Each line shows one project shape: generated code, a `#[path]` module, included files,
//! the package's library, a feature, and values fixed at compile time.
use std::time::Duration;

include!(concat!(env!("OUT_DIR"), "/gen.rs"));

#[path = "extra/renamed.rs"]
mod helper;

fn text() -> &'static str {
    include_str!("../assets/greeting.txt")
}

fn bytes() -> String {
    String::from_utf8_lossy(include_bytes!("../assets/blob.bin")).into_owned()
}

#[cfg(feature = "loud")]
fn volume() -> &'static str {
    "loud-1"
}

#[cfg(not(feature = "loud"))]
fn volume() -> &'static str {
    "quiet"
}

fn main_word() -> &'static str {
    "main-1"
}

fn line(frame: u64) -> String {
    format!(
        "frame={frame} main={} gen={} path={} text={} bytes={} lib={} volume={} version={} flavor={}",
        main_word(),
        generated(),
        helper::word(),
        text(),
        bytes(),
        shapes::library_word(),
        volume(),
        env!("CARGO_PKG_VERSION"),
        option_env!("SHAPES_FLAVOR").unwrap_or("none"),
    )
}

fn main() {
    let mut frame = 0u64;
    loop {
        frame += 1;
        println!("{}", line(frame));
        std::thread::sleep(Duration::from_millis(50));
    }
}
