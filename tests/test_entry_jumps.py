"""Entry jumps: after a patch, the old entry of each replaced function jumps to its newest
copy, so code that never passes a `hotline::call` safe point runs the new body on its next
call (ARCHITECTURE.md, "Entry jumps").

The `jumps` app has no `hotline::call` anywhere. Each of its lines carries `patches=N`
(`hotline::patches_applied()`), read before the line's calls: the first line with
`patches=1` shows the first calls made after the patch was applied.
"""

from __future__ import annotations

import re
import subprocess

from conftest import LiveApp, fields, save_file
from hotline.engine.analyse.demangle import demangle
from hotline.examples import copy_app

# The signature change of `scale`, u32 -> u64, with every caller updated in the same save.
SIGNATURE_EDIT = [
    ("fn scale(x: u32) -> u32 {\n    x * 3\n}", "fn scale(x: u64) -> u64 {\n    x * 5_000_000_000\n}"),
    ("    scale(round) as u64\n", "    scale(round as u64)\n"),
    ("let direct = scale(round);", "let direct = scale(round as u64);"),
]
NEW_SCALE = 5_000_000_000  # more than u32::MAX: only the u64 version can return round * NEW_SCALE


def printed_by(prefix: str, patches: int | None = None):
    """Lines of one printer (`tick`, `worker`, `long`, `spin`), optionally only those whose
    calls ran after exactly `patches` patches were applied."""
    return lambda s: s.startswith(prefix + " ") and (patches is None or fields(s)["patches"] == str(patches))


def line_number(app: LiveApp, needle: str) -> int:
    return next(
        i for i, s in enumerate((app.crate / "src/main.rs").read_text().splitlines(), 1) if needle in s
    )


def loop_head_of_spin(executable: str) -> int:
    """The byte offset in `jumps::spin` that its backward branch targets (objdump)."""
    listing = subprocess.run(
        ["objdump", "-d", "--no-show-raw-insn", executable], capture_output=True, text=True, check=True
    ).stdout
    body = listing.split("<_ZN5jumps4spin17h", 1)[1].split("\n\n", 1)[0]
    (offset,) = re.findall(r"\bjb\s+[0-9a-f]+ <_ZN5jumps4spin17h[0-9a-f]+E\+0x([0-9a-f]+)>", body)
    return int(offset, 16)


def change_the_signature_of_scale(app: LiveApp) -> dict:
    """Saves SIGNATURE_EDIT once the long frame runs; returns the patch's one HL1007 warning."""
    app.wait_line(printed_by("long"))
    for old, new in SIGNATURE_EDIT:
        app.edit(old, new)
    (warning,) = [w for w in app.patch()["warnings"] if w["rule"] == "HL1007"]
    return warning


def no_safe_point_in(app: LiveApp) -> None:
    assert "hotline::call" not in (app.crate / "src" / "main.rs").read_text()


def test_trait_object_created_before_the_patch_runs_the_edited_method_on_its_next_call(live_app):
    app = live_app("jumps")
    before = fields(app.wait_line(printed_by("tick")))
    assert before["shape"] == "square-4"  # Box<dyn Shape> made once, in main, at start-up
    app.edit('format!("square-{}", self.side)', 'format!("SQUARE-{}", self.side * 10)')
    event = app.patch()
    assert "<jumps::Square as jumps::Shape>::describe" in event["functions"]
    first = fields(app.wait_line(printed_by("tick", patches=1)))
    assert first["shape"] == "SQUARE-40"
    assert int(first["n"]) > int(before["n"])  # the same main loop, the same object


def test_thread_spawned_before_the_patch_runs_the_new_work_in_its_own_loop(live_app):
    app = live_app("jumps")
    before = fields(app.wait_line(printed_by("worker")))
    assert int(before["work"]) == int(before["round"]) * 10 + 1
    app.edit("round * 10 + 1", "round * 10 + 2")
    event = app.patch()
    assert "jumps::work" in event["functions"]
    first = fields(app.wait_line(printed_by("worker", patches=1)))
    assert int(first["work"]) == int(first["round"]) * 10 + 2
    assert int(first["round"]) > int(before["round"])  # the thread's own loop, never restarted


def test_callback_stored_in_a_static_as_a_fn_pointer_runs_its_new_body(live_app):
    app = live_app("jumps")
    assert fields(app.wait_line(printed_by("tick")))["cb"] == "100"
    app.edit("fn on_tick() -> u32 {\n    100\n}", "fn on_tick() -> u32 {\n    200\n}")
    event = app.patch()
    assert "jumps::on_tick" in event["functions"]
    assert fields(app.wait_line(printed_by("tick", patches=1)))["cb"] == "200"


def test_app_without_hotline_call_is_patched_and_its_static_and_thread_local_keep_values_and_addresses(
    live_app,
):
    app = live_app("jumps")
    no_safe_point_in(app)
    before = fields(app.wait_line(lambda s: printed_by("tick")(s) and int(fields(s)["n"]) >= 3))
    app.edit("tls_addr={tls_addr:#x} mark=a", "tls_addr={tls_addr:#x} mark=b")
    event = app.patch()
    assert "jumps::frame" in event["functions"]
    ticks = [fields(s) for s in app.wait_lines(printed_by("tick", patches=1), 3)]
    assert [t["mark"] for t in ticks] == ["b"] * 3  # the new frame() printed them
    for t in ticks:
        assert (t["hits_addr"], t["tls_addr"]) == (before["hits_addr"], before["tls_addr"])
    # Both count once per frame since start-up: neither was reset nor re-initialised by the patch.
    every = [fields(s) for s in app.wait_lines(printed_by("tick"), int(ticks[-1]["n"]))]
    assert [(t["hits"], t["tls"]) for t in every] == [(t["n"], t["n"]) for t in every]
    assert [int(t["n"]) for t in every] == list(range(1, len(every) + 1))


def test_signature_change_warns_hl1007_keeps_old_frames_consistent_and_new_callers_get_the_new_version(
    live_app,
):
    app = live_app("jumps")
    warning = change_the_signature_of_scale(app)
    assert warning["severity"] == "warning"
    assert warning["symbol"].startswith("_ZN") and demangle(warning["symbol"]) == "jumps::scale"
    assert (warning["file"], warning["line"]) == ("src/main.rs", line_number(app, "fn scale(x: u64) -> u64"))
    after = [fields(s) for s in app.wait_lines(printed_by("long", patches=1), 5)]
    for line in after:
        n = int(line["round"])
        # The frame compiled before the patch still calls the old scale(u32), with its old ABI...
        assert int(line["direct"]) == n * 3
        # ...while measure(), redirected to its new copy, calls the new scale(u64).
        assert int(line["via"]) == n * NEW_SCALE
    # One frame throughout: its counter never restarted.
    rounds = [int(fields(s)["round"]) for s in app.wait_lines(printed_by("long"), int(after[-1]["round"]))]
    assert rounds == list(range(1, len(rounds) + 1))
    mark = app.mark()
    app.wait_lines(printed_by("tick"), 3, after=mark)  # still running
    assert app.exits() == []


def test_signature_change_under_v0_mangling_is_found_in_the_debug_info_and_not_redirected(
    live_app, monkeypatch
):
    """v0 symbols carry no signature: the old and new `scale` share one name, so only the
    DWARF signatures tell the change apart; a jump would call scale(u64) with a u32."""
    monkeypatch.setenv("RUSTFLAGS", "-C symbol-mangling-version=v0")
    app = live_app("jumps")
    warning = change_the_signature_of_scale(app)
    assert warning["symbol"].startswith("_R") and demangle(warning["symbol"]) == "jumps::scale"
    for line in [fields(s) for s in app.wait_lines(printed_by("long", patches=1), 3)]:
        assert int(line["direct"]) == int(line["round"]) * 3  # the old frame's old scale(u32)
        assert int(line["via"]) == int(line["round"]) * NEW_SCALE
    assert app.exits() == []


def test_signature_change_warning_reaches_hotline_run_json(hotline_run, tmp_path):
    crate = copy_app("jumps", tmp_path)
    run = hotline_run(crate)
    run.until(lambda e: e["event"] == "app-output" and e["line"].startswith("long "), timeout=180)
    run.watching()
    main = crate / "src" / "main.rs"
    text = main.read_text()
    for old, new in SIGNATURE_EDIT:
        text = text.replace(old, new, 1)
    save_file(main, text)  # one save, atomically
    event = run.until(lambda e: e["event"] in ("patched", "patch-refused", "compile-error"), timeout=60)
    assert event["event"] == "patched", event
    (warning,) = [w for w in event["warnings"] if w["rule"] == "HL1007"]
    assert demangle(warning["symbol"]) == "jumps::scale" and warning["file"] == "src/main.rs"


def test_function_with_loop_head_at_byte_2_running_on_another_thread_is_not_redirected_and_nothing_crashes(
    live_app,
):
    app = live_app("jumps", ["spin"])
    before = fields(app.wait_line(printed_by("spin")))
    (started,) = [e for e in app.events if e["event"] == "app-started"]
    assert loop_head_of_spin(started["executable"]) == 2  # the premise, in the running executable
    assert before["r"] == "200000"
    app.edit('"jb 2b", "ret"', '"jb 2b", "add rax, 1", "ret"')
    event = app.patch()
    assert "jumps::spin" in event["functions"]
    hl1008 = [w for w in event["warnings"] if w["rule"] == "HL1008"]
    assert [demangle(w["symbol"]) for w in hl1008] == ["jumps::spin"]
    assert "targets byte 2 of its entry" in hl1008[0]["message"]
    # The spinning thread's loop, compiled before the patch, keeps calling the old entry,
    # which was left intact: it keeps its old result and keeps counting.
    spins = [fields(s) for s in app.wait_lines(printed_by("spin", patches=1), 5)]
    assert [s["r"] for s in spins] == ["200000"] * 5
    assert int(spins[0]["calls"]) > int(before["calls"])
    # A later patch still applies, with the spinner still running.
    app.edit("round * 10 + 1", "round * 10 + 2")
    assert "jumps::work" in app.patch()["functions"]
    worker = fields(app.wait_line(printed_by("worker", patches=2)))
    assert int(worker["work"]) == int(worker["round"]) * 10 + 2
    later = fields(app.wait_line(printed_by("spin", patches=2)))
    assert int(later["calls"]) > int(spins[-1]["calls"]) and later["r"] == "200000"
    assert app.exits() == []


def test_forty_patches_under_eight_calling_threads_land_on_the_newest_without_crash_or_eintr(live_app):
    app = live_app("stress")
    app.wait_line(lambda s: s.startswith("round=") and fields(s)["seen"] == ",".join(["1"] * 8))
    patches = 40
    for i in range(1, patches + 1):  # tiny() returns i + 1 after the i-th patch
        app.edit(f"fn tiny() -> u64 {{\n    {i}\n}}", f"fn tiny() -> u64 {{\n    {i + 1}\n}}")
        assert "stress::tiny" in app.patch()["functions"]
    newest = ",".join([str(patches + 1)] * 8)
    final = fields(app.wait_line(lambda s: s.startswith("round=") and fields(s)["seen"] == newest, timeout=5))
    assert final["patches"] == str(patches)
    mark = app.mark()
    app.wait_lines(lambda s: s.startswith("round="), 3, after=mark)  # alive
    assert int(fields(app.lines[-1])["read"]) > 0  # the reader thread kept reading
    assert [s for s in app.lines if "EINTR" in s or "read error" in s or "pipe closed" in s] == []
    assert app.exits() == []


def test_without_entry_jumps_a_stored_fn_pointer_and_a_threads_own_loop_keep_running_the_old_code(
    live_app,
):
    app = live_app("jumps", entry_jumps=False)
    app.wait_line(printed_by("worker"))
    app.wait_line(printed_by("tick"))
    app.edit("round * 10 + 1", "round * 10 + 2")
    app.edit("fn on_tick() -> u32 {\n    100\n}", "fn on_tick() -> u32 {\n    200\n}")
    event = app.patch()
    assert {"jumps::on_tick", "jumps::work"} <= set(event["functions"])
    # The patch applied (patches=1), yet neither old caller reaches the new code.
    workers = [fields(s) for s in app.wait_lines(printed_by("worker", patches=1), 5)]
    assert [int(w["work"]) for w in workers] == [int(w["round"]) * 10 + 1 for w in workers]
    ticks = [fields(s) for s in app.wait_lines(printed_by("tick", patches=1), 5)]
    assert [t["cb"] for t in ticks] == ["100"] * 5
