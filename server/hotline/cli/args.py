"""The command line of `hotline`: `run` with the editor settings' build options, and `lsp`."""

from __future__ import annotations

import argparse
import importlib.metadata
import re


def _version() -> str:
    try:
        return importlib.metadata.version("hotline-reload")
    except importlib.metadata.PackageNotFoundError:
        return "(not installed: run from a source checkout)"


_RUN_EPILOG = """\
The app needs nothing: no dependency and no code change. The runtime is built once per
toolchain and preloaded into it. Optionally make the app depend on the runtime crate
(package hotline-runtime) for safe points (hotline::call) and patch handlers
(hotline::on_patch); it is then linked in instead.

keys, when stdin is a terminal:
  r  restart: full rebuild and relaunch (what `restart required` asks for)
  p  show the last patch: its functions, phases and machine-code diff
  q  quit: stop the app and exit
  h  list these keys

A Cargo.toml or build.rs change rebuilds and relaunches; so does a save after the app
exited. A compile error in the first build waits for the save that fixes it.
Colours: only on a terminal, and never with NO_COLOR set."""


def parser() -> argparse.ArgumentParser:
    """The command line: `run` has the editor settings' build options (schemas/settings)."""
    top = argparse.ArgumentParser(prog="hotline", description="Save-to-patch hot reloading for Rust.")
    top.add_argument("--version", action="version", version=f"hotline {_version()}")
    sub = top.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser(
        "run",
        help="build, launch, watch and patch an app",
        description="Build the app keeping every symbol, launch it, watch its sources and patch\n"
        "the running process on every save.",
        epilog=_RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="%(prog)s [options] [dir] [-- APP ARGS]",
    )
    p_run.add_argument(
        "dir", nargs="?", default=".", help="the app's crate directory (default: ., the current directory)"
    )
    p_run.add_argument("--bin", metavar="NAME", help="which binary target to run, if the package has several")
    profile = p_run.add_mutually_exclusive_group()
    profile.add_argument(
        "--release",
        action="store_const",
        dest="profile",
        const="release",
        help="build with the release profile (= --profile release)",
    )
    profile.add_argument("--profile", metavar="NAME", help="build with this cargo profile (default: dev)")
    p_run.add_argument(
        "--features",
        metavar="LIST",
        action="append",
        help="cargo features to enable, comma or space separated; may be repeated",
    )
    p_run.add_argument(
        "--allow-layout-change",
        metavar="TYPE",
        action="append",
        help="patch even if this type's layout changed (rule HL1002), e.g. app::Particle, "
        "because no value of it survives a safe point; may be repeated",
    )
    p_run.add_argument("--json", action="store_true", help="print one JSON event per line")
    p_run.add_argument(
        "--no-entry-jumps",
        action="store_true",
        help="strict safe points: old code reaches new code only through hotline::call",
    )
    p_run.add_argument(
        "--no-debug-info",
        action="store_true",
        help="write no debug info for patches (debuggers, backtraces and perf then do not see "
        "patched code); it is made after each patch, off the save's path, so this saves CPU only",
    )
    p_run.add_argument("app_args", nargs="*", metavar="APP ARGS", help="arguments for the app (after --)")
    sub.add_parser("lsp", help="start the language server on stdio")
    return top


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Parses argv; for `run`, everything after `--` is the app's, and features are one list."""
    # Everything after `--` is the app's, even nothing (argparse rejects a bare trailing `--`).
    app_args = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = parser().parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    if args.command == "run":
        args.app_args = [*args.app_args, *app_args]
        args.features = [f for arg in args.features or () for f in re.split(r"[,\s]+", arg) if f]
    return args
