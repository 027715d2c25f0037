"""The VS Code extension end to end: code-server + the built .vsix, driven by headless Chromium (e2e.mjs).

Needs `bash scripts/setup-vscode.sh` (chromium, code-server, the .vsix, playwright-core); skipped with the
reason when that has not been run, unless HOTLINE_REQUIRE_VSCODE=1 (then missing pieces fail the test).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hotline import REPO_ROOT, examples
from hotline.examples import copy_app

pytestmark = pytest.mark.slow  # code-server and headless Chromium: 10-45 s a test

HERE = Path(__file__).parent
EXT = REPO_ROOT / "vscode-extension"
VSIX = EXT / "hotline.vsix"
ARTIFACTS = HERE / "artifacts"
CODE_SERVER_DIR = Path(
    os.environ.get("HOTLINE_CODE_SERVER_DIR", Path.home() / ".cache" / "hotline-code-server" / "4.100.3")
)
CODE_SERVER = CODE_SERVER_DIR / "node_modules" / ".bin" / "code-server"
CHROMIUM = os.environ.get("HOTLINE_CHROMIUM", "/usr/bin/chromium")


def missing_setup() -> list[str]:
    checks = {
        "node": shutil.which("node") is not None,
        f"chromium ({CHROMIUM})": Path(CHROMIUM).exists(),
        f"code-server ({CODE_SERVER_DIR}/.complete)": (CODE_SERVER_DIR / ".complete").exists(),
        "tests/vscode/node_modules/playwright-core": (HERE / "node_modules" / "playwright-core").is_dir(),
        "vscode-extension/node_modules": (EXT / "node_modules").is_dir(),
    }
    return [name for name, ok in checks.items() if not ok]


def ensure_vsix() -> None:
    """Rebuilds the .vsix when a source is newer than it (setup-vscode.sh builds it the first time)."""
    sources = [*EXT.glob("src/**/*.ts"), EXT / "package.json", EXT / "esbuild.mjs", EXT / "README.md"]
    newest = max(p.stat().st_mtime for p in sources)
    if not VSIX.exists() or VSIX.stat().st_mtime < newest:
        subprocess.run(["npm", "run", "-s", "package"], cwd=EXT, check=True, capture_output=True, timeout=120)


@pytest.fixture
def vscode_ready() -> None:
    missing = missing_setup()
    if missing:
        reason = "VS Code e2e not set up (run: bash scripts/setup-vscode.sh); missing: " + ", ".join(missing)
        if os.environ.get("HOTLINE_REQUIRE_VSCODE") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    ensure_vsix()


def run_e2e(tmp_path: Path, app: str = "counter", **extra: object) -> tuple[dict, str]:
    """Runs e2e.mjs on a fresh copy of a bundled app (examples/counter unless `app` says another);
    returns its JSON result and a failure detail."""
    crate = copy_app(app, tmp_path)
    config = {
        "codeServer": str(CODE_SERVER),
        "chromium": CHROMIUM,
        "vsix": str(VSIX),
        "folder": str(crate),
        "workDir": str(tmp_path / "vscode"),
        "artifacts": str(ARTIFACTS),
        # The extension finds its Python on PATH: put the one running these tests (it has hotline) first.
        "pathPrefix": str(Path(sys.executable).parent),
        **extra,
    }
    config_file = tmp_path / "e2e.json"
    config_file.write_text(json.dumps(config))
    proc = subprocess.run(
        ["node", str(HERE / "e2e.mjs"), str(config_file)],
        cwd=HERE,
        capture_output=True,
        text=True,
        timeout=360,
    )
    lines = proc.stdout.strip().splitlines()
    assert lines, f"e2e.mjs printed nothing (exit {proc.returncode}); stderr:\n{proc.stderr[-4000:]}"
    result = json.loads(lines[-1])
    detail = f"{json.dumps(result, indent=1)}\nstderr:\n{proc.stderr[-4000:]}"
    assert proc.returncode == 0 and result["ok"], detail
    return result, detail


def max_restarts() -> int:
    """The extension's restart budget for a crashing server (vscode-extension/src/common/restartPolicy.ts)."""
    source = (EXT / "src" / "common" / "restartPolicy.ts").read_text()
    return int(re.search(r"export const MAX_RESTARTS = (\d+);", source)[1])


def test_run_edit_save_patch_in_code_server(vscode_ready: None, tmp_path: Path) -> None:
    """Run App reveals the app's terminal with its output; edit + Ctrl+S, patched lens/status/terminal/log;
    a compile error in the status and the log; Show Last Patch, Restart, Force Full Rebuild, no notification
    for any of that; Attach Debugger names the pid; a panic raises a notification with the panic and Show
    Output; the fixed app runs again; hotline.rustcWarnings applies without a restart; server crashes restarted MAX_RESTARTS times, then not; Restart Language
    Server. The status item says Hotline in every state."""
    limit = max_restarts()
    result, detail = run_e2e(tmp_path, newGreeting="howdy", maxRestarts=limit)
    # Everything the status bar item showed, in order (Run App, save, a compile error and its fix, Restart
    # App, Force Full Rebuild, the panic, the relaunch, Stop App, the server killed and restarted, Run App +
    # Stop App on the new server).
    expected = [
        "Hotline",
        r"Hotline: building \d+/\d+",
        "Hotline: running",
        "Hotline: patching",
        r"Hotline: patched \d+ms",
        "Hotline: patching",
        r"Hotline: compile error \(1 error\)",
        r"Hotline: (running|patched \d+ms)",  # the fix: the code of the last patch again
        r"Hotline: building( \d+/\d+)?",  # the restart: with or without cargo's count, as timing has it
        "Hotline: running",
        r"Hotline: building( \d+/\d+)?",  # Force Full Rebuild
        "Hotline: running",
        r"Hotline: patched \d+ms",  # the edit that panics
        r"Hotline: stopped \(exit 101\)",
        r"Hotline: building( \d+/\d+)?",  # the fix saved (or Run App): relaunched
        "Hotline: running",
        "Hotline: stopped",
        "Hotline: server stopped",
        "Hotline",
        r"Hotline: building \d+/\d+",
        "Hotline: running",
        "Hotline: stopped",
        *["Hotline: server stopped", "Hotline"] * (limit - 1),  # crashes 2..MAX_RESTARTS: restarted
        "Hotline: server stopped",  # one more: given up
        "Hotline",  # Restart Language Server
        r"Hotline: building( \d+/\d+)?",
        "Hotline: running",
        "Hotline: stopped",
    ]
    texts = iter(result["statusTexts"])
    for pattern in expected:
        assert any(re.fullmatch(pattern, t) for t in texts), (
            f"status bar never showed {pattern!r} in order\n{detail}"
        )
    # Every state the item showed says whose it is.
    assert all(t == "Hotline" or t.startswith("Hotline: ") for t in result["statusTexts"]), detail
    # Run revealed the app's terminal, named after the app, with the app's output.
    assert result["runTerminal"]["panelVisible"], detail
    assert any("Hotline: counter" in t for t in result["runTerminal"]["tabs"]), detail
    assert re.fullmatch(r"hello frame=\d+ ticks=\d+ names=1", result["runTerminal"]["line"].strip()), detail
    assert result["lens"].startswith("patched in "), detail
    assert result["lensAboveFnGreeting"], detail
    assert result["appLine"].startswith("howdy frame="), detail
    # The log: which Python and hotline package, the app's start and each patch, as `hotline run` prints.
    assert re.search(
        r"language server's Python: \S+.*hotline-reload \S+ from \S+", result["logPythonLine"]
    ), detail
    assert re.search(r"app started \(pid \d+\)", result["logAppStarted"] or ""), detail
    assert re.search(r"patched in \d+ms: counter::greeting$", result["logPatchedLine"].rstrip()), detail
    # The compile error: in the status bar and in the log, with rustc's error.
    assert any(
        "compile error (1 error); the app keeps running its last good code" in line
        for line in result["logCompileError"]
    ), detail
    assert any(re.search(r"src/main\.rs:\d+:\d+: error", line) for line in result["logCompileError"]), detail
    assert Path(result["screenshot"]).is_file(), detail
    assert "Last Patch" in result["patchTab"], detail  # the lens click opened the Markdown preview
    assert result["restartedServer"]["restarted"] != result["restartedServer"]["killed"], detail
    # Force Full Rebuild: a new app, from a binary compiled again although nothing changed since the restart.
    assert result["forceRebuild"]["appAfter"] != [result["forceRebuild"]["appBefore"]], detail
    assert result["forceRebuild"]["binaryRebuilt"], detail
    # Routine events (run, save that patches, a compile error, restart, rebuild) pop up no notification...
    assert result["routineToasts"] == [], detail
    # Attach Debugger without CodeLLDB or the C/C++ extension: one message naming the app's pid and gdb.
    pid = result["attach"]["appPid"]
    assert f"the app's pid is {pid}." in result["attach"]["message"], detail
    assert f"gdb -p {pid}" in result["attach"]["message"], detail
    assert "Install CodeLLDB" in result["attach"]["message"], detail  # the button
    assert len(result["attach"]["toasts"]) == 1, detail
    # hotline.rustcWarnings turned on while the app runs: the server is told, not restarted; the app goes on.
    live = result["liveSetting"]
    assert live["log"] and live["log"].endswith(
        "settings changed (rustcWarnings): applied at once, the app goes on"
    ), detail
    assert live["serverAfter"] == live["serverBefore"] and len(live["serverBefore"]) == 1, detail
    assert live["appAfter"] == [live["appBefore"]], detail
    # The panic: one notification with the exit, the panic's location and message, and Show Output, which
    # shows the terminal with the panic.
    crash = result["crash"]
    assert crash["status"] == "Hotline: stopped (exit 101)", detail
    assert re.search(
        r"Hotline: the app crashed \(exit code 101\): thread 'main'.* panicked at src/main\.rs:\d+:\d+: hotline e2e crash",
        crash["message"],
    ), detail
    assert crash["buttons"] == ["Show Output"], detail
    assert "panicked at src/main.rs" in crash["terminalLine"], detail
    assert len(crash["toasts"]) == 1, detail
    assert result["afterCrashToasts"] == [], detail  # relaunching and stopping: no notification
    # Saving the fix relaunched the crashed app (issue 15).
    assert result["relaunchedOnSave"], detail
    # ... while the recorder does see one: crash MAX_RESTARTS + 1 is not restarted, and says so once.
    assert len(set(result["crashRestarts"])) == limit, detail
    assert result["afterLastCrash"] == {"servers": [], "statusText": "Hotline: server stopped"}, detail
    assert f"crashed {limit + 1} times" in result["giveUpNotification"], detail
    assert "Restart Language Server" in result["giveUpNotification"], detail
    assert len(result["giveUpToasts"]) == 1, detail
    # Hotline: Restart Language Server starts a new server after that.
    assert result["revivedServer"] not in result["crashRestarts"], detail
    assert result["totalMs"] < 240_000, detail


def test_window_reload_reattaches_to_the_running_app(vscode_ready: None, tmp_path: Path) -> None:
    """Issue 14: Run, then Developer: Reload Window. The new language server re-attaches to the app at once (no
    Run): the status says running with the same pid, one app process, the same one; its terminal is shown with
    the frames going on from where they were (the app kept its state: main's frame= and the static ticks=);
    the log says app re-attached; the next edit patches it; it still runs after the reaper's grace; Restart
    Language Server re-attaches to it too. Then a
    terminal's `hotline run` owns the crate: Run App asks to take it over, and doing so re-attaches to its app.
    Last, a full build that fails: its notification has rustc's error without the colour codes."""
    result, detail = run_e2e(tmp_path, scenario="reload", newGreeting="howdy", python=sys.executable)
    r = result["reload"]
    pid = r["appBefore"]
    # Before: Run started it; its pid in the tooltip.
    assert f"App pid {pid}:" in r["tooltipBefore"], detail
    assert any(re.search(rf"app started \(pid {pid}\)", line) for line in r["logBefore"]), detail
    # After the reload, without Run: running, the same pid, the same single process, a new language server.
    assert re.fullmatch(r"Hotline: running( · injected)?", r["statusAfter"][-1]), detail
    assert not any("building" in t or "error" in t for t in r["statusAfter"]), detail
    assert f"App pid {pid}:" in r["tooltipAfter"], detail
    assert r["appAfter"] == [pid], detail
    assert len(r["serversAfter"]) == 1 and r["serversAfter"] != [r["serverBefore"]], detail
    # Its terminal was shown by itself, named after the app, saying it was re-attached; the counters go on.
    assert any("Hotline: counter" in t for t in r["terminalTabs"]), detail
    assert re.search(rf"\[hotline\] app re-attached \(pid {pid}\)", r["terminalReattachedLine"] or ""), detail
    assert r["framesAfter"] and min(r["framesAfter"]) > r["lastFrameBefore"], detail
    assert min(r["ticksAfter"]) > r["lastTicksBefore"], detail  # the static counter too
    assert r["framesAfter"] == sorted(r["framesAfter"]), detail
    # The log: "app re-attached (pid N)", not "app started".
    assert any(re.search(rf"app re-attached \(pid {pid}\)", line) for line in r["logAfter"]), detail
    assert not any("app started" in line for line in r["logAfter"]), detail
    # The next save patches the re-attached app, which counts on.
    assert re.fullmatch(r"Hotline: patched \d+ms( · injected)?", r["patchedStatus"]), detail
    m = re.match(r"howdy frame=(\d+) ticks=(\d+)", r["patchedLine"].strip())
    assert m and int(m[1]) > max(r["framesAfter"]), detail
    # Past the reaper's grace the app still runs, and it is still the same process; nothing popped up.
    assert r["appLate"] == [pid], detail
    assert r["lastFrameLate"] > int(m[1]), detail
    assert r["toasts"] == [], detail
    # Hotline: Restart Language Server: a new server, which re-attaches to the same app (no build).
    restart = r["serverRestart"]
    assert len(restart["after"]) == 1 and restart["after"] != restart["before"], detail
    assert restart["apps"] == [pid] and f"App pid {pid}:" in restart["tooltip"], detail
    assert not any("building" in t for t in restart["statuses"]), detail
    assert r["appAfterStop"] == [], detail
    # Take over: a terminal's `hotline run` owns the crate; Run App asks, without rustc's or any colour codes,
    # and "Take over" re-attaches to its app (the same process) while it exits.
    t = result["takeOver"]
    assert re.search(
        rf"Hotline: counter is already under another Hotline, pid {t['cliPid']} \(its app is pid {t['cliAppPid']}\)",
        t["message"],
    ), detail
    assert "\x1b" not in t["message"], detail
    assert t["buttons"] == ["Take over"], detail
    assert t["cliExit"] == {"code": 0, "signal": None} and t["cliSaid"], detail
    assert f"App pid {t['cliAppPid']}:" in t["tooltip"], detail
    assert t["apps"] == [t["cliAppPid"]], detail
    assert any(re.search(rf"app re-attached \(pid {t['cliAppPid']}\)", line) for line in t["log"]), detail
    assert len(t["toasts"]) == 1, detail  # the question only
    assert t["appsAfterStop"] == [], detail
    # A full build that fails: one error notification with rustc's error, without its colour codes.
    failure = result["buildFailure"]
    assert "the fat build failed" in failure["text"] and "error" in failure["text"].split("failed", 1)[1], (
        detail
    )
    assert "\x1b" not in failure["text"] and "[0m" not in failure["text"], detail
    assert len(failure["toasts"]) == 1, detail
    assert "leftoverApps" not in result, detail


def test_no_python_with_hotline_says_how_to_fix(vscode_ready: None, tmp_path: Path) -> None:
    result, detail = run_e2e(
        tmp_path, scenario="no-python", settings={"hotline.pythonPath": "/nonexistent/python3"}
    )
    assert result["statusText"] == "Hotline: server stopped", detail
    assert "hotline.pythonPath" in result["notification"], detail
    assert "pip install -e" in result["notification"], detail


def test_python_path_is_listed_in_user_settings(vscode_ready: None, tmp_path: Path) -> None:
    """hotline.pythonPath can be set in User settings: the Settings editor's User tab lists it (a
    machine-scoped setting is only listed under Remote in code-server)."""
    result, detail = run_e2e(tmp_path, scenario="user-settings")
    assert result["activeSettingsTab"] == "User", detail
    assert result["pythonPathListed"], detail
    assert result["settingItems"] == ["Hotline: Python Path"], detail


def test_receipts_on_the_patched_lenses_and_quietly_in_the_status(
    vscode_ready: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 25: one save edits `step` (called every 50 ms) and `settings` (called once at start): the lens
    above fn step says it ran, the one above fn settings that it was not called since the patch; the status
    item warns, its tooltip naming HL1013; no notification pops up."""
    monkeypatch.setitem(examples.APPS, "receipts", REPO_ROOT / "tests" / "apps" / "receipts")
    result, detail = run_e2e(tmp_path, app="receipts", scenario="receipts")
    r = result["receipts"]
    assert re.fullmatch(r"patched in \d+ms · ran", r["ranLens"]), detail
    assert re.fullmatch(r"patched in \d+ms · not called since the patch", r["notRunLens"]), detail
    assert re.fullmatch(r"Hotline: patched \d+ms", r["statusText"]), detail  # the $(warning) icon is no text
    assert "receipts::settings not called since the patch (HL1013): restart to apply" in r["tooltip"], detail
    assert r["toasts"] == [], detail


def test_a_loop_that_keeps_its_old_code_is_a_lens_a_problem_and_a_status_warning(
    vscode_ready: None, tmp_path: Path
) -> None:
    """Issue 25 (HL1012): an edit inside the loop of worker(), which thread worker-1 runs forever, is
    patched; the lens above fn worker says the thread still runs the old code, the Problems view has the
    HL1012 warning, and the status item warns with the function and thread in its tooltip."""
    result, detail = run_e2e(tmp_path, app="live_loops", scenario="live-frames")
    r = result["liveFrames"]
    # one decoration holds the line's lenses: the patched one, then HL1012's
    assert r["lens"].startswith("patched in "), detail
    assert r["lens"].endswith(" | ⚠ still running old code on thread worker-1 (HL1012)"), detail
    assert "[Ln 16, Col 1]" in r["problem"], detail  # on fn worker's signature
    assert "live_loops::worker is running on thread worker-1" in r["problem"], detail
    assert re.fullmatch(r"Hotline: patched \d+ms", r["statusText"]), detail  # the $(warning) icon is no text
    assert "live_loops::worker still runs old code on thread worker-1 (HL1012)" in r["tooltip"], detail
