# SPDX-License-Identifier: GPL-3.0-or-later
"""The ``specdiff`` command: one subcommand per module in ``gr_specdiff.commands``."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from gr_specdiff import __version__, commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="specdiff",
        description="Pixel-wise 5G NR / LTE / radar spectrum segmentation (SpecDiff).",
    )
    parser.add_argument("--version", action="version", version=f"gr-specdiff {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        importlib.import_module(f"{commands.__name__}.{info.name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        # Bad input is reported as one clear line, not a traceback.
        print(f"specdiff {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
