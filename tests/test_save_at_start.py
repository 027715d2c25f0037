"""A save made while `hotline run` is still starting is never dropped (issue 28): during the fat
build, between the build and the app's first line, and right after it. The app is std-only
and its output files lie under the watched workspace (target/hotline/output), so the
watcher is never quiet: what watchfiles' `watch()` needed to say it was in place."""

from __future__ import annotations

import pytest
from conftest import edit_file
from hotline.examples import copy_app

MOMENTS = {
    # cargo reported the binary compiled: the build is still extracting objects
    "during_the_fat_build": lambda e: e["event"] == "build-progress" and e["crate"] == "plain",
    "between_the_build_and_the_first_output": lambda e: e["event"] == "app-started",
    "right_after_the_first_output": lambda e: e["event"] == "app-output" and e["line"].startswith("tick="),
}


@pytest.mark.parametrize("moment", list(MOMENTS))
def test_a_save_made_while_hotline_run_starts_is_patched_into_the_running_app(tmp_path, hotline_run, moment):
    crate = copy_app("plain", tmp_path)
    run = hotline_run(crate, own_target_dir=True)  # target/hotline, inside the watched tree
    run.until(MOMENTS[moment], timeout=300)
    edit_file(crate / "src" / "main.rs", '"hello".to_string()', '"early".to_string()')
    outcome = run.until(
        lambda e: e["event"] in ("patched", "patch-refused", "compile-error", "no-change"), 60
    )
    assert outcome["event"] == "patched" and outcome["functions"] == ["plain::greeting"], outcome
    run.until(lambda e: e["event"] == "app-output" and "greeting=early" in e["line"], 30)
    kinds = [e["event"] for e in run.events]
    assert kinds.count("app-started") == 1 and "app-exited" not in kinds, kinds
    assert kinds.count("watching") == 1, kinds  # reported once the watcher was armed
