"""Language features across a patch (issue 7): generics, iterators and `impl Trait`, async fn
bodies, closures capturing state, trait objects, derives and formatting macros."""

from __future__ import annotations

from conftest import fields


def test_one_patch_changes_every_feature_and_old_trait_objects_run_the_new_method(live_app):
    app = live_app("features")
    before = fields(app.wait_line(lambda s: s.startswith("generic=9")))
    assert before["old_dyn"] == "4" and before["new_dyn"] == "9"
    app.edit("        if item > best {", "        if item < best {")
    app.edit("(0..limit).filter(|n| n % 2 == 0)", "(0..limit).filter(|n| n % 2 == 1)")
    app.edit(
        "async fn fetch(n: u32) -> u32 {\n    n + 1\n}", "async fn fetch(n: u32) -> u32 {\n    n + 100\n}"
    )
    app.edit("let add = |x: u32| x + *counter * 0;", "let add = |x: u32| x + 1000 + *counter * 0;")
    app.edit("        self.0 * self.0\n", "        self.0 * self.0 * 10.0\n")
    app.edit("        Square(1.5),", "        Tag(7),")
    app.edit('"x"\n    );', '"x"\n    );\n    #[derive(Debug)]\n    struct Tag(u8);')
    app.edit("fmt={:>5}|", "fmt={:<5}|")
    mark = app.mark()
    event = app.patch()
    assert {"features::largest", "features::fetch::{{closure}}"} & set(event["functions"])
    line = app.wait_line(lambda s: s.startswith("generic=3"), after=mark)
    after = fields(line)
    assert after["iter"] == "[1," and "iter=[1, 3, 5]" in line  # impl Trait iterator
    assert after["async"] == "141"  # the async fn body awaited after the patch
    assert after["closure"] == "1010"  # a closure capturing state
    assert after["new_dyn"] == "90"  # a trait object the new code creates calls the new method
    assert after["old_dyn"] == "40"  # one created before the patch too: its old method jumps to the new
    assert "derive=Tag(7)" in line  # a new derived impl
    assert line.endswith("fmt=x    |")  # a formatting macro
