// One module per codegen unit (built with -C codegen-units=16): the scope walks of
// tests/test_engine_patch_scope.py follow references between these units.

pub mod leaf {
    #[inline(never)]
    pub fn word() -> &'static str {
        "one"
    }
}

pub mod middle {
    // Calls leaf::word from another unit; reaches alloc::fmt::format, a generic instance
    // this crate holds its own copy of.
    #[inline(never)]
    pub fn phrase() -> String {
        format!("[{}]", crate::leaf::word())
    }
}

pub mod upper {
    #[inline(never)]
    pub fn show() -> String {
        crate::middle::phrase() + "!"
    }
}

pub mod shape_impl {
    pub struct Square;
    impl crate::factory::Shape for Square {
        #[inline(never)]
        fn name(&self) -> &'static str {
            "square"
        }
    }
}

pub mod factory {
    pub trait Shape {
        fn name(&self) -> &'static str;
    }
    // The vtable of Square as dyn Shape lives here, with the coercion; nothing here calls
    // Square::name directly.
    #[inline(never)]
    pub fn make() -> &'static dyn Shape {
        &crate::shape_impl::Square
    }
}

// Stands in for the runtime's safe point: is_safe_point matches `7hotline4call`.
pub mod hotline {
    #[inline(never)]
    pub fn call<R>(f: impl Fn() -> R) -> R {
        f()
    }
}

pub mod plain {
    #[inline(never)]
    pub fn call<R>(f: impl Fn() -> R) -> R {
        f()
    }
}

pub mod looper {
    #[inline(never)]
    pub fn safe_tick() -> usize {
        crate::hotline::call(|| crate::leaf::word().len())
    }
    #[inline(never)]
    pub fn plain_tick() -> usize {
        crate::plain::call(|| crate::leaf::word().len() + 1)
    }
}

pub mod outer_safe {
    #[inline(never)]
    pub fn run() -> usize {
        crate::looper::safe_tick()
    }
}

pub mod outer_plain {
    #[inline(never)]
    pub fn run() -> usize {
        crate::looper::plain_tick()
    }
}

fn main() {
    println!("{} {}", upper::show(), factory::make().name());
    println!("{} {}", outer_safe::run(), outer_plain::run());
}
