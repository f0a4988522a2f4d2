"""Options every ``cluster-sim`` command takes: ``-v/-q``, ``--traces DIR`` (and ``--version``).

They may come before the command or after it (``cluster-sim -v run EXP.yaml`` and
``cluster-sim run EXP.yaml -v`` are the same). Logs go through the standard :mod:`logging`
module, the ``cluster_sim`` logger, to stderr: warnings by default, ``-v`` INFO, ``-vv`` DEBUG,
``-q`` warnings only and no progress bar. ``--traces DIR`` is where the public traces are
looked for, instead of ``$CLUSTER_SIM_TRACES`` (``../shared/traces`` beside the repository when
neither is set).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from pathlib import Path

from .. import __version__
from ..errors import ConfigError
from ..workload.traces.common import TRACES_ENV

__all__ = ["add_global_options", "apply_global_options", "log_level"]

LOGGER = "cluster_sim"
"""The logger every module's ``logging.getLogger(__name__)`` sits under."""


def _add(p: argparse.ArgumentParser, top: bool) -> None:
    # below the top level the defaults are SUPPRESS: an option given after the command is kept,
    # one given before it is not overwritten by the command's default
    def dflt(value: object) -> object:
        return value if top else argparse.SUPPRESS

    def free(*names: str) -> list[str]:  # a command's own option keeps its name (train --verbose)
        return [n for n in names if n not in p._option_string_actions]

    g = p.add_argument_group("global options")
    g.add_argument(*free("-v", "--verbose"), dest="verbosity", action="count", default=dflt(0),
                   help="log more on stderr: -v INFO, -vv DEBUG (the cluster_sim logger)")
    g.add_argument(*free("-q", "--quiet"), dest="quiet", action="store_true", default=dflt(False),
                   help="warnings and errors only: no progress bar, no INFO logs")
    g.add_argument(*free("--traces"), dest="traces", metavar="DIR", default=dflt(None),
                   help=f"folder of the public traces (default: ${TRACES_ENV}, else ../shared/traces "
                   "beside the repository)")


def add_global_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--version`` and the global options to ``parser`` and to every (sub)command under it."""
    parser.add_argument("--version", action="version", version=f"cluster-sim {__version__}")
    _add(parser, top=True)
    todo = [parser]
    while todo:
        p = todo.pop()
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in dict.fromkeys(action.choices.values()):  # aliases map to one parser
                    _add(sub, top=False)
                    todo.append(sub)


def log_level(verbose: int, quiet: bool) -> int:
    """``-v`` count and ``-q`` -> a :mod:`logging` level (WARNING by default)."""
    if verbose and quiet:
        raise ConfigError("-v and -q: give one of them, not both")
    return logging.DEBUG if verbose >= 2 else logging.INFO if verbose == 1 else logging.WARNING


def apply_global_options(args: argparse.Namespace, scope: contextlib.ExitStack) -> None:
    """Configure logging and the traces folder for this command; ``scope`` undoes both on exit."""
    level = log_level(args.verbosity, args.quiet)
    logger = logging.getLogger(LOGGER)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)

    def restore() -> None:
        logger.removeHandler(handler)
        logger.setLevel(old_level)

    scope.callback(restore)
    if args.traces is not None:
        folder = Path(args.traces)
        if not folder.is_dir():
            raise ConfigError(f"--traces {args.traces}: not a directory (the folder holding the public "
                              f"traces, e.g. azure_llm_2023/)")
        old = os.environ.get(TRACES_ENV)
        os.environ[TRACES_ENV] = str(folder.resolve())  # seen by any process the command starts, too
        scope.callback(_restore_env, TRACES_ENV, old)
        logger.debug("traces folder %s (--traces)", folder.resolve())


def _restore_env(name: str, old: str | None) -> None:
    if old is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = old
