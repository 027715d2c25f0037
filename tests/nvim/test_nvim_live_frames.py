"""Live frames (HL1012) in a real headless Neovim (as test_nvim.py): an edit of a thread's
own loop shows a lens and a warning diagnostic on `fn worker`, and the statusline says that
old code still runs."""

from __future__ import annotations

import sys

from conftest import copy_app
from test_nvim import lens_titles, line_of, replace_line, start_nvim, status, wait_for, write

LIVE_TITLE = "⚠ still running old code on thread worker-1 (HL1012)"


def test_an_edited_thread_loop_shows_the_hl1012_lens_diagnostic_and_status(tmp_path):
    crate = copy_app("live_loops", tmp_path)
    n = start_nvim(crate)
    try:
        n.exec_lua("require('hotline').setup({ python = ... })", sys.executable)
        n.command("edit src/main.rs")
        n.exec_lua("_G.src_buf = vim.api.nvim_get_current_buf()")
        wait_for(n, lambda: status(n) == "Hotline idle", 30, "status idle")
        n.command("HotlineRun")
        wait_for(n, lambda: status(n) == "Hotline running", 240, "running", fail_on_error=True)
        replace_line(n, 'println!("worker v=1', ['        println!("worker v=2 label={}", label());'])
        write(n)
        worker = line_of(n, "fn worker()")
        wait_for(n, lambda: LIVE_TITLE in lens_titles(n, worker), 60, "the HL1012 lens on fn worker")
        diags = n.exec_lua(
            """
            local out = {}
            for _, d in ipairs(vim.diagnostic.get(_G.src_buf)) do
              if d.code == 'HL1012' then table.insert(out, { lnum = d.lnum, message = d.message }) end
            end
            return out
            """
        )
        assert [d["lnum"] for d in diags] == [worker], diags
        assert "live_loops::worker is running on thread worker-1" in diags[0]["message"]
        s = status(n)
        assert s.startswith("Hotline ⚡ patched") and "live_loops::worker still runs" in s, s
    finally:
        n.exec_lua("for _, c in ipairs(vim.lsp.get_clients({ name = 'hotline' })) do c:stop() end")
        wait_for(n, lambda: n.exec_lua("return #vim.lsp.get_clients({ name = 'hotline' })") == 0, 15, "stop")
        n.close()
