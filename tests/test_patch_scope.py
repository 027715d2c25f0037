"""A patch links only the codegen units whose behaviour changed, and still reaches new code
on every path: through an unchanged caller in another unit, through a trait object's
vtable, and through code an earlier patch relinked that a later patch leaves out."""

from __future__ import annotations

from conftest import fields


def test_patch_links_the_changed_units_and_everything_that_reaches_them(live_app):
    app = live_app("scope")
    first = fields(app.wait_line(lambda s: s.startswith("phrase=[one]")))
    assert first["shape"] == "square" and first["tag"] == "t1"

    # `middle::phrase` is unchanged, but its old copy calls the old `leaf::word`.
    app.edit('"one"', '"two"')
    mark = app.mark()
    event = app.patch()
    assert event["functions"] == ["scope::leaf::word"]
    assert 0 < event["units"]["linked"] < event["units"]["total"]
    app.wait_line(lambda s: s.startswith("phrase=[two] shape=square tag=t1"), after=mark)

    # A method reached only through a vtable.
    app.edit('"square".to_string()', '"square-v2".to_string()')
    mark = app.mark()
    app.patch()
    app.wait_line(lambda s: s.startswith("phrase=[two] shape=square-v2 tag=t1"), after=mark)

    # This patch leaves out the units the earlier ones relinked; the new code must still
    # reach their newest copies, not the executable's originals.
    app.edit('"t1"', '"t2"')
    mark = app.mark()
    event = app.patch()
    assert event["functions"] == ["scope::other::tag"]
    line = fields(app.wait_line(lambda s: s.startswith("phrase=[two] shape=square-v2 tag=t2"), after=mark))
    assert int(line["n"]) > int(first["n"])  # the loop's state lived through all three
