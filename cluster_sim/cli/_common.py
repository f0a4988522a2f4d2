"""Helpers shared by the CLI subcommands: JSON output, tables, console, the last-resort error line."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rich.console import Console

__all__ = ["BOUNDARY_ERRORS", "boundary_message", "emit_json", "make_console", "show_progress", "stderr_console"]

BOUNDARY_ERRORS = (OSError, RecursionError, MemoryError)
"""Exceptions the CLI turns into one line and exit 2 when no input check caught them first.

Input checks at the source (``config.load``, ``topology.safe_load``, the trace readers) should
raise :class:`~cluster_sim.errors.ClusterSimError` long before; this is the last line of
defence for the I/O and resource errors an input can still cause (a disk full while writing a
run directory, a permission denied), never a way to hide a bug: other exceptions keep their
traceback."""


def emit_json(obj: Any) -> None:
    """Print ``obj`` as indented, key-sorted JSON on stdout."""
    json.dump(obj, sys.stdout, indent=2, sort_keys=True, default=str)
    sys.stdout.write("\n")


def show_progress(args: argparse.Namespace) -> bool:
    """Whether a command may draw its progress bar: not with ``--json`` nor ``-q`` (and only on a
    terminal: :func:`cluster_sim.cli.progress.progress_bar` checks that)."""
    return not getattr(args, "json", False) and not getattr(args, "quiet", False)


def make_console() -> Console:
    """Console for tables: terminal width on a TTY, a wide fixed width otherwise."""
    return Console(highlight=False, width=None if sys.stdout.isatty() else 200)


def stderr_console() -> Console:
    """Console for errors and progress (stderr)."""
    return Console(stderr=True, highlight=False)


def boundary_message(exc: BaseException) -> str:
    """One line for an exception in :data:`BOUNDARY_ERRORS`."""
    if isinstance(exc, MemoryError):
        return "out of memory: the input asks for more than this machine has; make it smaller"
    if isinstance(exc, RecursionError):
        return "input nested too deeply (Python's recursion limit was reached)"
    if isinstance(exc, OSError):
        what = exc.strerror or type(exc).__name__
        return f"{exc.filename}: {what}" if exc.filename is not None else f"I/O error: {what}"
    return " ".join(str(exc).split()) or type(exc).__name__
