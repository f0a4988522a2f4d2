"""``cluster-sim validate EXP.yaml``: check an experiment without running it."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.text import Text

from ..experiment import check
from ._common import emit_json
from .run import RAW, add_experiment_args, load_experiment

__all__ = ["register"]


def _cmd_validate(args: argparse.Namespace, console: Console) -> int:
    cfg = load_experiment(args)
    lines = check(cfg)
    if args.json:
        emit_json({"ok": True, "experiment": cfg.name, "checked": lines})
        return 0
    for line in lines:
        console.print(Text(f"ok  {line}"), soft_wrap=True)
    console.print(Text(f"{args.experiment}: valid", style="bold green"))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``validate`` command."""
    p = sub.add_parser(
        "validate", help="check an experiment (config, topology, models, plans fit) without running it",
        formatter_class=RAW,
        description="Load and check an experiment without running it: the config schema, the topology "
        "(every card connected), each training job's model, plan and memory fit, the scaling request, "
        "inference services (models, card types and counts, trace files) and policy names. Exit 0 when "
        "valid; otherwise one error line naming the field and exit 2.\n\nexample:\n"
        "  cluster-sim validate workloads/demo.yaml --set training.jobs.0.parallel.tp=16")
    add_experiment_args(p)
    p.add_argument("--json", action="store_true", help="print {ok, experiment, checked} as JSON")
    p.set_defaults(handler=_cmd_validate)
