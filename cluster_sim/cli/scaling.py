"""``cluster-sim scaling EXP.yaml --cards 8,64,512 [--topology FILE ...]``: linear speedup and MFU vs cards."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..errors import ConfigError
from ..experiment import ScalingSpec, load_cluster, scaling_curves
from ..report import plots
from ..units import fmt_count
from ._common import emit_json
from .run import RAW, add_experiment_args, load_experiment

__all__ = ["parse_cards", "register"]


def parse_cards(text: str) -> tuple[int, ...]:
    """``"8,64,512"`` -> ``(8, 64, 512)``; a bad item is a ConfigError naming ``--cards``."""
    try:
        cards = tuple(int(x) for x in text.replace(" ", "").split(",") if x)
    except ValueError:
        raise ConfigError(f"--cards {text!r}: expected comma-separated integers, e.g. 8,64,512") from None
    if not cards or min(cards) < 1:
        raise ConfigError(f"--cards {text!r}: expected positive integers, e.g. 8,64,512")
    return cards


def _cmd_scaling(args: argparse.Namespace, console: Console) -> int:
    cfg = load_experiment(args)
    base = ScalingSpec.from_config(getattr(cfg, "scaling", None))
    if args.cards is None and base is None:
        raise ConfigError("--cards: give card counts (e.g. --cards 8,64,512) or a scaling section in the experiment")
    topologies = (tuple(str(Path(t).resolve()) if Path(t).exists() else t for t in args.topology)
                  if args.topology else (base.topologies if base else ()))
    spec = ScalingSpec(cards=parse_cards(args.cards) if args.cards else base.cards,  # type: ignore[union-attr]
                       topologies=topologies,
                       mode=args.mode or (base.mode if base else "weak"),
                       job=args.job if args.job is not None else (base.job if base else 0))
    topology = None if spec.topologies else load_cluster(cfg.cluster.topology, cfg.base_dir)
    curves, notes = scaling_curves(cfg, spec, topology)
    if args.png:
        _, job = spec.pick(cfg)
        fig = plots.scaling(curves, mode=spec.mode, title=f"{job.name} ({job.model}), {spec.mode} scaling")
        plots.save_png(fig, args.png)
    if args.json:
        emit_json({label: df.to_dict(orient="records") for label, df in curves.items()})
        return 0
    _, job = spec.pick(cfg)
    who = job.name if job.name == job.model else f"{job.name} ({job.model})"
    for label, df in curves.items():
        t = Table(title=f"{who} on {label}: {spec.mode} scaling", title_justify="left")
        for col in ("cards", "dp", "global batch", "step s", "tokens/s", "TFLOP/s/card", "MFU", "speedup",
                    "linear speedup", "comm share"):
            t.add_column(col, justify="right", no_wrap=True)
        r: Any  # an itertuples row: attribute per column
        for r in df.itertuples():
            t.add_row(f"{r.cards:,}", str(r.dp), f"{r.global_batch:,}", f"{r.step_time_s:.4g}",
                      fmt_count(r.tokens_per_s), f"{r.tflops_per_card:.1f}", f"{r.mfu:.1%}",
                      f"{r.speedup:.2f}x", f"{r.linear_speedup:.1%}", f"{r.comm_fraction:.1%}")
        console.print(t)
    for note in notes:
        console.print(Text(f"note: {note}"), soft_wrap=True)
    if args.png:
        console.print(f"wrote {args.png}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``scaling`` command."""
    p = sub.add_parser(
        "scaling", help="linear speedup and MFU of a training job against card count, per topology",
        formatter_class=RAW,
        description="Grow a training job's data parallelism over card counts and print throughput, MFU, "
        "speedup and linear speedup X(N) / ((N/N0) X(N0)) on the experiment's topology, or on each "
        "--topology to compare fabrics. Defaults come from the experiment's scaling section.\n\nexamples:\n"
        "  cluster-sim scaling workloads/train_llama3_70b.yaml --cards 32,64,128,256,512,1024\n"
        "  cluster-sim scaling workloads/train_llama3_70b.yaml --cards 32,256,1024 \\\n"
        "      --topology topologies/h100-rail-1024.yaml --topology topologies/h100-ethernet-1024.yaml "
        "--png scaling.png")
    add_experiment_args(p)
    p.add_argument("--cards", metavar="N,N,...", help="card counts, each a multiple of the job's tp*pp*cp")
    p.add_argument("--topology", metavar="FILE", action="append", default=[],
                   help="topology to run on (repeat to compare fabrics in one table and plot)")
    p.add_argument("--mode", choices=("weak", "strong"), default=None,
                   help="weak: fixed micro-batches per rank (default); strong: fixed global batch")
    p.add_argument("--job", metavar="NAME", default=None, help="which training job (default: the first)")
    p.add_argument("--png", metavar="PATH", help="also write the linear-speedup and MFU plot here")
    p.add_argument("--json", action="store_true", help="print the points per topology as JSON and nothing else")
    p.set_defaults(handler=_cmd_scaling)
