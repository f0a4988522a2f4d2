"""Helpers shared by the CLI subcommands: JSON output, tables, console."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

__all__ = ["emit_json", "make_console", "stderr_console"]


def emit_json(obj: Any) -> None:
    """Print ``obj`` as indented, key-sorted JSON on stdout."""
    json.dump(obj, sys.stdout, indent=2, sort_keys=True, default=str)
    sys.stdout.write("\n")


def make_console() -> Console:
    """Console for tables: terminal width on a TTY, a wide fixed width otherwise."""
    return Console(highlight=False, width=None if sys.stdout.isatty() else 200)


def stderr_console() -> Console:
    """Console for errors and progress (stderr)."""
    return Console(stderr=True, highlight=False)
