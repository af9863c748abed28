# SPDX-License-Identifier: GPL-3.0-or-later
"""Subcommands of the ``specdiff`` CLI, one module each.

Every module here defines ``register(subparsers)``, which adds its parser and sets
``func`` (called with the parsed args, returns an exit code). The CLI discovers the
modules, so adding a subcommand never touches a shared file.
"""
