# SPDX-License-Identifier: GPL-3.0-or-later
"""Subcommands of the ``specdiff`` CLI, one module each.

Every module here defines ``register(subparsers)``, which adds its parser and sets
``func`` (called with the parsed args, returns an exit code). The CLI discovers the
modules, so adding a subcommand never touches a shared file.
"""


def add_flips_argument(parser) -> None:
    """``--flips`` as every command that runs an exported model takes it (runtime.parse_flips)."""
    parser.add_argument("--flips", default="",
                        help="test-time flips: frequency, or frequency+time (better maps for "
                             "one more model pass per view; live, more dropped frames on a CPU)")
