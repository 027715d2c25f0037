//! Code spread over modules (rustc gives each its own codegen unit), for the tests of
//! which units a patch links: an unchanged caller, a trait object's vtable, and code an
//! earlier patch relinked that a later one leaves out.
use std::time::Duration;

mod leaf {
    #[inline(never)]
    pub fn word() -> &'static str {
        "one"
    }
}

mod middle {
    /// Never edited: reaches the edited `leaf::word` from another codegen unit.
    #[inline(never)]
    pub fn phrase() -> String {
        format!("[{}]", crate::leaf::word())
    }
}

mod shapes {
    pub trait Shape {
        fn name(&self) -> String;
    }

    pub struct Square;

    impl Shape for Square {
        fn name(&self) -> String {
            "square".to_string()
        }
    }

    #[inline(never)]
    pub fn make() -> Box<dyn Shape> {
        Box::new(Square)
    }
}

mod other {
    #[inline(never)]
    pub fn tag() -> &'static str {
        "t1"
    }
}

mod quiet {
    /// Never edited and reaches nothing that is: no patch should relink it.
    #[inline(never)]
    pub fn count(n: u64) -> u64 {
        n + 1
    }
}

fn main() {
    let mut n = 0;
    loop {
        hotline::call(|| {
            n = quiet::count(n);
            println!("phrase={} shape={} tag={} n={n}", middle::phrase(), shapes::make().name(), other::tag());
        });
        std::thread::sleep(Duration::from_millis(30));
    }
}
