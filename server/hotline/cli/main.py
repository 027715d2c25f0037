"""The `hotline` command's entry point: `run`, or the language server for `lsp`."""

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
