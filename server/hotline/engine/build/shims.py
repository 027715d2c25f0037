"""The small executables cargo and rustc call into during builds.

They are shell scripts so a thin build pays no Python start-up in the link step: in thin
mode (HOTLINE_THIN_DIR set) the link shim only hard-links rustc's fresh object files out.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from hotline import REPO_ROOT

_WRAPPER = """#!/bin/sh
# Hotline: records this workspace crate's rustc command, then runs rustc.
PYTHONPATH={pythonpath}${{PYTHONPATH:+:$PYTHONPATH}} exec {python} -m hotline.engine.build.capture rustc "$@"
"""

_LINK = """#!/bin/bash
# Hotline linker shim. Thin build: copy the crate's objects out, link nothing.
if [ -n "$HOTLINE_THIN_DIR" ]; then
  # A bash array, not `set --` in sh: rebuilding the argument list once per argument is
  # quadratic, 100 ms for the ~1000 arguments of a 100-crate app.
  objects=()
  for a; do [[ $a == *.rcgu.o ]] && objects+=("$a"); done
  # One process for all objects; hard links cost no copy and outlive rustc's cleanup.
  ln -f -- "${{objects[@]}}" "$HOTLINE_THIN_DIR/" 2>/dev/null || cp -- "${{objects[@]}}" "$HOTLINE_THIN_DIR/"
  exit $?
fi
PYTHONPATH={pythonpath}${{PYTHONPATH:+:$PYTHONPATH}} exec {python} -m hotline.engine.build.capture link "$@"
"""


def write_shims(capture_dir: Path) -> Path:
    """Writes the rustc wrapper and the linker shim; returns the wrapper's path."""
    capture_dir.mkdir(parents=True, exist_ok=True)
    fill = {"python": shlex.quote(sys.executable), "pythonpath": shlex.quote(str(REPO_ROOT / "server"))}
    wrapper = capture_dir / "hotline-rustc"
    for path, text in ((wrapper, _WRAPPER), (capture_dir / "hotline-link", _LINK)):
        path.write_text(text.format(**fill))
        path.chmod(0o755)
    return wrapper
