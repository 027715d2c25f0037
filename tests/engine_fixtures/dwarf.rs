// Types and functions whose DWARF tests/test_engine_dwarf.py reads (versions 4 and 5).

pub struct Player {
    pub hp: u32,
    pub name: String,
    pub pos: (f32, f32),
}

pub enum Shape {
    Circle(f32),
    Rect { w: f32, h: f32 },
    Empty,
}

#[repr(u8)]
pub enum Level {
    Low = 1,
    High = 7,
}

pub union Bits {
    pub i: u32,
    pub f: f32,
}

#[inline(never)]
pub fn area(s: &Shape) -> f32 {
    match s {
        Shape::Circle(r) => r * r,
        Shape::Rect { w, h } => w * h,
        Shape::Empty => 0.0,
    }
}

#[inline(never)]
pub fn make(hp: u32, name: String) -> Player {
    Player { hp, name, pos: (0.0, 0.0) }
}

#[inline(never)]
pub fn nothing(_a: u8, _b: u64) {}

#[inline(never)]
pub fn level(l: Level) -> u8 {
    l as u8
}

#[inline(never)]
pub fn bits(b: Bits) -> u32 {
    unsafe { b.i }
}

impl Player {
    #[inline(never)]
    pub fn heal(&mut self, by: u32) -> u32 {
        self.hp += by;
        self.hp
    }
}
