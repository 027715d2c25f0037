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
from hotline import REPO_ROOT
from hotline.examples import copy_app

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


def run_e2e(tmp_path: Path, **extra: object) -> tuple[dict, str]:
    """Runs e2e.mjs on a fresh copy of examples/counter; returns its JSON result and a failure detail."""
    crate = copy_app("counter", tmp_path)
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
    """Run App, edit + Ctrl+S, patched lens/status/output, Show Last Patch, Restart, Force Full Rebuild, Stop,
    no notification for any of that; server crashes restarted MAX_RESTARTS times, then not; Restart Language
    Server."""
    limit = max_restarts()
    result, detail = run_e2e(tmp_path, newGreeting="howdy", maxRestarts=limit)
    # Everything the status bar item showed, in order (Run App, save, Restart App, Stop App, the server
    # killed and restarted, Run App + Stop App on the new server).
    expected = [
        "Hotline",
        r"building \d+/\d+",
        "running",
        "patching",
        r"patched \d+ms",
        r"building( \d+/\d+)?",  # the restart: with or without cargo's count, as timing has it
        "running",
        r"building( \d+/\d+)?",  # Force Full Rebuild
        "running",
        "stopped",
        "Hotline: server stopped",
        "Hotline",
        r"building \d+/\d+",
        "running",
        "stopped",
        *["Hotline: server stopped", "Hotline"] * (limit - 1),  # crashes 2..MAX_RESTARTS: restarted
        "Hotline: server stopped",  # one more: given up
        "Hotline",  # Restart Language Server
        r"building( \d+/\d+)?",
        "running",
        "stopped",
    ]
    texts = iter(result["statusTexts"])
    for pattern in expected:
        assert any(re.fullmatch(pattern, t) for t in texts), (
            f"status bar never showed {pattern!r} in order\n{detail}"
        )
    assert result["lens"].startswith("patched in "), detail
    assert result["lensAboveFnGreeting"], detail
    assert result["appLine"].startswith("howdy frame="), detail
    assert Path(result["screenshot"]).is_file(), detail
    assert "Last Patch" in result["patchTab"], detail  # the lens click opened the Markdown preview
    assert result["restartedServer"]["restarted"] != result["restartedServer"]["killed"], detail
    # Force Full Rebuild: a new app, from a binary compiled again although nothing changed since the restart.
    assert result["forceRebuild"]["appAfter"] != [result["forceRebuild"]["appBefore"]], detail
    assert result["forceRebuild"]["binaryRebuilt"], detail
    # Routine events (run, save that patches, restart, rebuild, stop) pop up no notification...
    assert result["routineToasts"] == [], detail
    # ... while the recorder does see one: crash MAX_RESTARTS + 1 is not restarted, and says so once.
    assert len(set(result["crashRestarts"])) == limit, detail
    assert result["afterLastCrash"] == {"servers": [], "statusText": "Hotline: server stopped"}, detail
    assert f"crashed {limit + 1} times" in result["giveUpNotification"], detail
    assert "Restart Language Server" in result["giveUpNotification"], detail
    assert len(result["giveUpToasts"]) == 1, detail
    # Hotline: Restart Language Server starts a new server after that.
    assert result["revivedServer"] not in result["crashRestarts"], detail
    assert result["totalMs"] < 200_000, detail


def test_no_python_with_hotline_says_how_to_fix(vscode_ready: None, tmp_path: Path) -> None:
    result, detail = run_e2e(
        tmp_path, scenario="no-python", settings={"hotline.pythonPath": "/nonexistent/python3"}
    )
    assert result["statusText"] == "Hotline: server stopped", detail
    assert "hotline.pythonPath" in result["notification"], detail
    assert "pip install -e" in result["notification"], detail
