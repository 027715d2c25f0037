"""Type layouts and function locations read from the debug info real rustc emits, in
both DWARF versions it can emit (4 is the default; 5 reads its file table differently),
and an enum's layout change found between two builds."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hotline.engine.analyse.type_layouts import crate_layouts, layout_changes
from hotline.engine.link.elf_objects import read_object

SOURCE = """pub struct Player { pub hp: u32, pub name: String, pub pos: (f32, f32) }
pub enum Shape { Circle(f32), Rect { w: f32, h: f32 }, Empty }
#[inline(never)] pub fn area(s: &Shape) -> f32 { match s { Shape::Circle(r) => r * r, Shape::Rect { w, h } => w * h, Shape::Empty => 0.0 } }
#[inline(never)] pub fn make(hp: u32) -> Player { Player { hp, name: String::new(), pos: (0.0, 0.0) } }
"""


def compile_object(tmp_path: Path, source: str, dwarf: int, name: str = "lib") -> Path:
    src = tmp_path / f"{name}.rs"
    src.write_text(source)
    out = tmp_path / f"{name}-{dwarf}.o"
    subprocess.run(
        ["rustc", "--crate-type=lib", "--crate-name=shapes", "-Cdebuginfo=2", f"-Cdwarf-version={dwarf}"]
        + ["--emit=obj", "-o", str(out), str(src)],
        check=True,
    )
    return out


@pytest.mark.parametrize("dwarf", [4, 5])
def test_layouts_and_function_lines(tmp_path, dwarf):
    layouts = crate_layouts([read_object(compile_object(tmp_path, SOURCE, dwarf))], "shapes")
    player = layouts.types["shapes::Player"]
    assert player.kind == "struct" and player.size == 40 and player.align == 8
    assert {f[0] for f in player.fields} == {"hp", "name", "pos"}
    assert dict((f[0], f[2]) for f in player.fields)["name"] == "String"
    shape = layouts.types["shapes::Shape"]
    assert shape.kind == "enum"
    assert [f[0] for f in shape.fields if f[0].startswith("variant")] == [
        "variant Circle = 0",
        "variant Rect = 1",
        "variant Empty = 2",
    ]
    lines = {sym.split("shapes")[-1][:8]: where for sym, where in layouts.functions.items()}
    assert lines["4area17h"] == (str(tmp_path / "lib.rs"), 3)
    assert lines["4make17h"] == (str(tmp_path / "lib.rs"), 4)


def test_enum_layout_change_is_found(tmp_path):
    before = crate_layouts([read_object(compile_object(tmp_path, SOURCE, 4, "old"))], "shapes")
    edited = SOURCE.replace("Rect { w: f32, h: f32 }", "Rect { w: f64, h: f64 }").replace(
        "w * h", "(w * h) as f32"
    )
    after = crate_layouts([read_object(compile_object(tmp_path, edited, 4, "new"))], "shapes")
    changes = {c.type_name: c.description for c in layout_changes(before, after)}
    assert changes["shapes::Shape"].startswith("enum Shape: size 12 → 24")
    assert "shapes::Player" not in changes
