"""``cluster-sim validate EXP.yaml | PLAN.yaml | SWEEP.yaml``: check an experiment without running it.

A plan or sweep file (a top-level ``experiment:``) is checked as ``cluster-sim plan`` / ``sweep``
check it before their first run, and then every candidate's (or grid cell's) experiment as one
experiment file is."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.text import Text

from ..config import ExperimentConfig, load_config, read_mapping
from ..experiment import check
from ..experiment.plan import plan_runs
from ..experiment.plan_spec import load_plan_file
from ..experiment.sweep import expand_grid
from ..experiment.sweep_spec import is_sweep_file, load_sweep_file
from ._common import emit_json
from .run import RAW, add_experiment_args, load_experiment, parse_overrides

__all__ = ["register"]


def _variants(args: argparse.Namespace) -> list[tuple[str, ExperimentConfig]] | None:
    """``(label, config)`` of each candidate of a plan file or cell of a sweep file, first seed
    (None for an experiment file)."""
    path = Path(args.experiment)
    if not path.is_file():   # a shipped name, or a missing file: load_experiment says which
        return None
    data = read_mapping(path)
    if not is_sweep_file(data):
        return None
    sets = parse_overrides(args.overrides)
    if "factors" not in data:   # a plan file (docs/planner.md)
        spec = load_plan_file(args.experiment)
        _, _, runs = plan_runs(spec, overrides=sets)
        first: dict[str, ExperimentConfig] = {}
        for r in runs:
            first.setdefault(r.factors["candidate"], r.cfg)
        return [(f"candidate {name}", cfg) for name, cfg in first.items()]
    sw = load_sweep_file(args.experiment, data)
    return [(", ".join(f"{k}={v}" for k, v in cell.items()),
             load_config(sw.experiment, overrides={**sw.overrides, **sets, **cell}))
            for cell in expand_grid(sw.factors)]


def _cmd_validate(args: argparse.Namespace, console: Console) -> int:
    variants = _variants(args)
    if variants is not None:
        lines = [f"{label}: {line}" for label, cfg in variants for line in check(cfg)]
        if args.json:
            emit_json({"ok": True, "experiment": str(args.experiment), "checked": lines})
            return 0
        for line in lines:
            console.print(Text(f"ok  {line}"), soft_wrap=True)
        console.print(Text(f"{args.experiment}: valid ({len(variants)} variants)", style="bold green"))
        return 0
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
        "inference services (models, card types and counts, trace files) and policy names. A plan or sweep "
        "file (docs/planner.md, docs/sweeps.md) is checked as plan/sweep check it before their first "
        "run, then each candidate's or grid cell's experiment likewise. Exit 0 when "
        "valid; otherwise one error line naming the field and exit 2.\n\nexample:\n"
        "  cluster-sim validate workloads/demo.yaml --set training.jobs.0.parallel.tp=16\n"
        "  cluster-sim validate workloads/plan_supernode.yaml")
    add_experiment_args(p)
    p.add_argument("--json", action="store_true", help="print {ok, experiment, checked} as JSON")
    p.set_defaults(handler=_cmd_validate)
