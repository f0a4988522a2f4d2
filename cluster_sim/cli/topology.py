"""``cluster-sim topology show FILE [--json] [--png PATH]``."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ..report.topology_plot import plot_topology
from ..topology import load_topology
from ..units import fmt_bandwidth, fmt_duration
from ._common import emit_json, stderr_console

__all__ = ["register"]


def _bw(bytes_per_s: float) -> str:
    """'450 GB/s (3.6 Tbps)'; peta-scale aggregates as PB/s and Pbps."""
    def peta(x: float, unit: str, fallback: str) -> str:
        return f"{x / 1e15:.3g} P{unit}" if x >= 1e15 else fallback

    return (f"{peta(bytes_per_s, 'B/s', fmt_bandwidth(bytes_per_s, bits=False))} "
            f"({peta(bytes_per_s * 8, 'bps', fmt_bandwidth(bytes_per_s))})")


def _table(title: str, cols: list[str]) -> Table:
    t = Table(title=title, title_justify="left")
    for i, c in enumerate(cols):
        t.add_column(c, justify="left" if i == 0 else "right", no_wrap=True)
    return t


def _print_summary(s: dict, console: Console) -> None:
    sites = s["sites"]
    console.print(f"[bold]{s['name']}[/bold] (builder {s['builder']}): {s['n_cards']:,} cards in "
                  f"{len(sites)} site{'s' if len(sites) != 1 else ''}")
    t = _table("Cards by type", ["card type", "cards"])
    for name, n in s["cards_by_type"].items():
        t.add_row(name, f"{n:,}")
    console.print(t)
    t = _table("Scale-up domains", ["system", "domains x size", "fabric", "per card, per direction"])
    for d in s["scaleup_domains"]:
        t.add_row(d["system"], f"{d['count']:,} x {d['size']}", d["fabric"], _bw(d["scaleup_Bps_per_card"]))
    console.print(t)
    t = _table("Link tiers (capacity per direction)", ["level", "tier", "links", "capacity", "oversubscription"])
    for x in s["tiers"]:
        o = x.get("oversubscription")
        t.add_row(x["level"], x["tier"], f"{x['links']:,}", _bw(x["capacity_Bps"]), f"{o:g}:1" if o else "-")
    console.print(t)
    t = _table("Sites", ["dc", "cards", "fabric", "switch tiers", "oversubscription", "bisection"])
    for x in sites:
        osub = ", ".join(f"{k} {v:g}:1" for k, v in x["oversubscription"].items()) or "-"
        t.add_row(str(x["dc"]), f"{x['cards']:,}", x["fabric"], " > ".join(x["switch_levels"]) or "-", osub,
                  _bw(x["bisection_Bps"]))
    console.print(t)
    if s["dci"]:
        t = _table("Data-centre interconnect", ["sites", "distance", "capacity", "convergence", "latency one way"])
        for d in s["dci"]:
            t.add_row(f"{d['sites'][0]} - {d['sites'][1]}", f"{d['distance_km']:g} km", _bw(d["capacity_Bps"]),
                      f"{d['convergence_ratio']:g}:1", fmt_duration(d["latency_s"]))
        console.print(t)
    console.print(f"Bisection bandwidth (per direction, docs/topology.md): {_bw(s['bisection_Bps'])}")


def _cmd_show(args: argparse.Namespace, console: Console) -> int:
    topo = load_topology(args.file)
    summary = topo.summary()
    if args.json:
        emit_json(summary)
        if args.png:
            stderr_console().print(f"Drawing written to {plot_topology(topo, args.png)}")
        return 0
    _print_summary(summary, console)
    path = plot_topology(topo, Path(args.png) if args.png else Path(f"{topo.name}.png"))
    console.print(f"Drawing written to {path}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``topology`` command."""
    top = sub.add_parser("topology", help="inspect cluster topologies",
                         description="Inspect interconnect topologies (YAML files in topologies/).")
    top_sub = top.add_subparsers(dest="topology_command", metavar="ACTION", required=True)
    show = top_sub.add_parser(
        "show", help="print a topology summary and draw it",
        description="Print cards by type, scale-up domains, link tiers with oversubscription, "
        "bisection bandwidth, sites and DCI links; write a PNG drawing (default <name>.png here).")
    show.add_argument("file", metavar="FILE", help="topology YAML file")
    show.add_argument("--json", action="store_true", help="print the summary as JSON (no PNG unless --png)")
    show.add_argument("--png", metavar="PATH", help="where to write the drawing (default: <name>.png)")
    show.set_defaults(handler=_cmd_show)
