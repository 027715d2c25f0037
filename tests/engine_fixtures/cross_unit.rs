// Read by tests/test_engine_dwarf.py: built with -C opt-level=2 -C codegen-units=2, LLVM
// imports `make` and `spawn_*` into the other unit's module with their compile units, and
// one object then holds two units, one of whose functions is defined (DW_AT_low_pc) in one
// unit and declared (DW_AT_specification, DW_FORM_ref_addr) in the other. The shape of
// tokio's `Cell<T, S>::new` in an app at opt-level 1.

pub mod cell {
    pub struct Cell<T, S> {
        pub v: T,
        pub s: S,
    }
    impl<T: Copy, S: Copy> Cell<T, S> {
        pub fn new(v: T, s: S) -> Box<Self> {
            Box::new(Cell { v, s })
        }
        pub fn get(&self) -> (T, S) {
            (self.v, self.s)
        }
    }
    pub fn make<T: Copy, S: Copy>(v: T, s: S) -> Box<Cell<T, S>> {
        Cell::new(v, s)
    }
}

pub mod spawn {
    pub fn spawn_u(x: u64) -> u64 {
        crate::cell::make(x, 1u8).get().0
    }
    pub fn spawn_i(x: u32) -> u32 {
        crate::cell::make(x, 2u16).get().0
    }
}

pub mod user {
    pub fn a(x: u64) -> u64 {
        crate::spawn::spawn_u(x) + crate::spawn::spawn_i(x as u32) as u64
    }
    pub fn b(x: u64) -> u64 {
        crate::cell::Cell::new(x, 1u8).get().0
    }
}
