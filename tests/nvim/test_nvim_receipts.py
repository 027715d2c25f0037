"""Receipts (issue 25) in a real headless Neovim with the plugin (nvim/), as test_nvim.py drives it: one
save edits `step` (called every 50 ms) and `settings` (called once at start) of tests/apps/receipts; the
lens on fn step says it ran, the one on fn settings that it was not called since the patch, and the
status says HL1013 quietly (no message)."""

from __future__ import annotations

import re
import sys

from hotline import REPO_ROOT, examples
from test_nvim import (  # noqa: F401 (nvim_ready: the module's skip-or-fail fixture)
    lens_titles,
    line_of,
    nvim_ready,
    replace_line,
    start_nvim,
    status,
    wait_for,
    write,
)


def test_receipts_on_the_patched_lenses_and_quietly_in_the_status(tmp_path, monkeypatch):
    monkeypatch.setitem(examples.APPS, "receipts", REPO_ROOT / "tests" / "apps" / "receipts")
    crate = examples.copy_app("receipts", tmp_path)
    n = start_nvim(crate)
    try:
        n.exec_lua("require('hotline').setup({ python = ... })", sys.executable)
        n.command("edit src/main.rs")
        n.exec_lua("_G.src_buf = vim.api.nvim_get_current_buf()")
        wait_for(n, lambda: status(n) == "Hotline idle", 30, "status idle")
        n.command("HotlineRun")
        wait_for(n, lambda: status(n) == "Hotline running", 240, "running", fail_on_error=True)
        replace_line(n, "    n + 1", ["    n + 100"])
        replace_line(n, "    7", ["    8"])
        write(n)
        step, settings = line_of(n, "fn step"), line_of(n, "fn settings")

        def lens(line: int, pattern: str):
            return lambda: [t for t in lens_titles(n, line) if re.fullmatch(pattern, t)]

        wait_for(
            n, lens(step, r"patched in \d+ms · ran"), 30, "the · ran lens on fn step", fail_on_error=True
        )
        wait_for(
            n,
            lens(settings, r"patched in \d+ms · not called since the patch"),
            15,
            "the · not called since the patch lens on fn settings",
        )
        table = n.exec_lua("return require('hotline').status_table(_G.src_buf)")
        assert table["state"] == "patched"
        assert table["message"] == "receipts::settings not called since the patch (HL1013): restart to apply"
        # the statusline: the message summarised after the time
        assert re.fullmatch(r"Hotline ⚡ patched \d+ms · receipts::settings not called since the…", status(n))
        messages = n.exec_lua("return vim.api.nvim_exec2('messages', { output = true }).output")
        assert "HL1013" not in messages and "not called" not in messages, messages  # quiet: no message
    finally:
        n.exec_lua("for _, c in ipairs(vim.lsp.get_clients({ name = 'hotline' })) do c:stop() end")
        n.close()
