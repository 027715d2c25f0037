"""`hotline`: the engine for a terminal user.

`hotline run [DIR] [--bin NAME] [--release | --profile NAME] [--features F] [--json] [-- APP ARGS]`
builds the app, launches it, watches its sources and patches the running process on every
save; in a terminal, keys restart (r), show the last patch (p) and quit (q), as `flutter
run` does. `hotline lsp` starts the language server on stdio.
"""

from __future__ import annotations

import sys

from hotline.cli.args import parse_args
from hotline.cli.run_command import run


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.command == "lsp":
        from hotline.lsp.server import main as lsp_main

        lsp_main()
        return
    sys.exit(run(args))
