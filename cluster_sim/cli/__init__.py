"""The ``cluster-sim`` command line: thin wrappers over the Python API.

Each subcommand lives in its own module with a ``register(subparsers)`` function and
handlers ``(args, console) -> exit code``. A user error
(:class:`~cluster_sim.errors.ClusterSimError`) prints one line on stderr and exits 2. The
options every command takes (``--version``, ``-v/-q``, ``--traces DIR``): :mod:`.options`.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence

from rich.text import Text

from ..errors import ClusterSimError
from . import catalog, demo, init, plan, run, scaling, sweep, topology, trace, train, validate
from ._common import BOUNDARY_ERRORS, boundary_message, make_console, stderr_console
from .options import add_global_options, apply_global_options

__all__ = ["build_parser", "main"]

# One line per command module, in help order.
COMMANDS = [run, sweep, plan, train, scaling, validate, demo, init, catalog, topology, trace]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for docs and tests)."""
    p = argparse.ArgumentParser(
        prog="cluster-sim",
        description="Simulate heterogeneous GPU/NPU AI clusters: training performance (MFU, linear "
        "speedup), scheduling, and LLM serving (TTFT/TPOT/SLO).",
        epilog="Run `cluster-sim COMMAND --help` for a command's options. Docs: README.md, docs/.",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.register(sub)
    add_global_options(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cluster-sim`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        with contextlib.ExitStack() as args.scope:  # what a command keeps open until it returns
            apply_global_options(args, args.scope)   # logging, --traces: undone when it returns
            return int(args.handler(args, make_console()))
    except ClusterSimError as exc:
        stderr_console().print(Text.assemble(("error: ", "bold red"), str(exc)), soft_wrap=True)
        return 2
    except BrokenPipeError:  # pragma: no cover - stdout closed early (`| head`): not an input error
        raise
    except BOUNDARY_ERRORS as exc:  # last line of defence; input checks should have raised above
        stderr_console().print(Text.assemble(("error: ", "bold red"), boundary_message(exc)), soft_wrap=True)
        return 2
    except KeyboardInterrupt:  # pragma: no cover
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
