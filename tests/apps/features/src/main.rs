//! Language features across a patch: each line of output exercises one, and tests edit them.
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

trait Shape {
    fn area(&self) -> f64;
}

#[derive(Debug, Clone, PartialEq)]
struct Square(f64);

impl Shape for Square {
    fn area(&self) -> f64 {
        self.0 * self.0
    }
}

fn largest<T: PartialOrd + Copy>(items: &[T]) -> T {
    let mut best = items[0];
    for &item in items {
        if item > best {
            best = item;
        }
    }
    best
}

fn evens(limit: u32) -> impl Iterator<Item = u32> {
    (0..limit).filter(|n| n % 2 == 0)
}

async fn fetch(n: u32) -> u32 {
    n + 1
}

/// A minimal executor: enough to await async fns without a runtime crate.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    let waker = Waker::from(Arc::new(Noop));
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut Context::from_waker(&waker)) {
            return out;
        }
    }
}

fn frame(old_shape: &dyn Shape, counter: &mut u32) {
    *counter += 1;
    let add = |x: u32| x + *counter * 0;
    let new_shape: Box<dyn Shape> = Box::new(Square(3.0));
    println!(
        "generic={} iter={:?} async={} closure={} old_dyn={} new_dyn={} derive={:?} fmt={:>5}|",
        largest(&[3, 9, 4]),
        evens(7).collect::<Vec<_>>(),
        block_on(fetch(41)),
        add(10),
        old_shape.area(),
        new_shape.area(),
        Square(1.5),
        "x"
    );
}

fn main() {
    let shape: Box<dyn Shape> = Box::new(Square(2.0)); // created before any patch
    let mut counter = 0;
    loop {
        hotline::call(|| frame(shape.as_ref(), &mut counter));
        std::thread::sleep(Duration::from_millis(40));
    }
}
