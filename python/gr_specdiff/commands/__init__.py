# SPDX-License-Identifier: GPL-3.0-or-later
"""Subcommands of the ``specdiff`` CLI, one module each.

Every module here defines ``register(subparsers)``, which adds its parser and sets
``func`` (called with the parsed args, returns an exit code). The CLI discovers the
modules, so adding a subcommand never touches a shared file.
"""


def add_precision_argument(parser) -> None:
    """``--precision`` as every command that runs an exported model takes it."""
    from gr_specdiff import PRECISIONS

    parser.add_argument("--precision", choices=PRECISIONS, default="float32",
                        help="bfloat16: the model's convolutions in bfloat16, faster on a CPU "
                             "with native bfloat16 (AVX512-BF16, AMX) for the same maps to "
                             "within rounding (default float32)")


def add_flips_argument(parser) -> None:
    """``--flips`` as every command that runs an exported model takes it (runtime.parse_flips)."""
    parser.add_argument("--flips", default="",
                        help="test-time flips: frequency, or frequency+time (better maps for "
                             "one more model pass per view; live, more dropped frames on a CPU)")
