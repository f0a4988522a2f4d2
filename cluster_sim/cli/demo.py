"""``cluster-sim demo [--out DIR]``: run ``workloads/demo.yaml`` and write its run directory."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.text import Text

from .. import shipped
from ..config import load_config
from ..experiment import check_out_dir, simulate
from ..experiment.store import to_jsonable
from ._common import emit_json, show_progress
from .progress import progress_bar
from .run import RAW, print_summary
from .train import headline

__all__ = ["demo_config_path", "register"]


def demo_config_path() -> Path:
    """``workloads/demo.yaml`` in the working directory, else the shipped one (:mod:`cluster_sim.shipped`)."""
    cand = Path.cwd() / "workloads" / "demo.yaml"
    if cand.is_file():
        return cand
    return shipped.require("demo", "workloads", "workload")


def _cmd_demo(args: argparse.Namespace, console: Console) -> int:
    path = Path(args.config) if args.config else demo_config_path()
    cfg = load_config(path)
    check_out_dir(args.out)  # refuse a bad --out before the run, not after
    with progress_bar(show_progress(args), f"demo: {cfg.name}") as progress:
        result = simulate(cfg, progress=progress)
    out = result.save(args.out)
    if args.json:
        emit_json(to_jsonable({"out": str(out), "summary": result.summary}))
        return 0
    print_summary(console, result)
    for e in result.estimates:
        console.print(Text(f"{e.name} (estimate): {headline(e)}"), soft_wrap=True)
    for label, df in result.scaling.items():
        last = df.iloc[-1]
        console.print(Text(f"scaling on {label}: linear speedup {last['linear_speedup']:.1%} and MFU "
                           f"{last['mfu']:.1%} at {int(last['cards']):,} cards (N0 = {int(df['cards'].iloc[0]):,})"))
    pngs = sorted(p.name for p in (out / "plots").glob("*.png"))
    console.print(f"\nwrote {out}/: summary.json, report.html, config.resolved.yaml, *.parquet, "
                  f"plots/ ({', '.join(pngs)})")
    console.print(f"open {out / 'report.html'} in a browser")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``demo`` command."""
    p = sub.add_parser(
        "demo", help="run the default experiment (workloads/demo.yaml) and write a report",
        formatter_class=RAW,
        description="Run workloads/demo.yaml: Llama-3-70B pretraining on 1,024 H100s (step breakdown, "
        "MFU, days to train 15T tokens) and its scaling on rail-optimized InfiniBand vs a 4:1 fat-tree "
        "vs Ethernet; write summary.json, plots and a self-contained report.html.\n\nexample:\n"
        "  cluster-sim demo --out runs/demo")
    p.add_argument("--out", metavar="DIR", default="runs/demo", help="run directory (default: runs/demo)")
    p.add_argument("--config", metavar="EXP.yaml", help="another experiment instead of workloads/demo.yaml")
    p.add_argument("--json", action="store_true", help="print {out, summary} as JSON and nothing else")
    p.set_defaults(handler=_cmd_demo)
