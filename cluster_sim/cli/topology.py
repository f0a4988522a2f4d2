"""``cluster-sim topology show FILE|NAME [--json] [--out DIR | --png PATH]``."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .. import shipped
from ..report.files import safe_filename
from ..report.topology_plot import plot_topology
from ..topology import load_topology
from ..units import fmt_bandwidth, fmt_duration
from ._common import emit_json, stderr_console

__all__ = ["DEFAULT_OUT", "drawing_path", "register", "topology_file"]

DEFAULT_OUT = "runs/topology"
"""Where ``topology show`` draws ``<name>.png`` without ``--png`` or ``--out``."""


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


def drawing_path(name: str, png: str | None, out: str | None) -> Path:
    """``--png PATH`` as given, else ``<out>/<name>.png`` with the name made safe (never outside ``out``)."""
    if png:
        return Path(png)
    return Path(out or DEFAULT_OUT) / f"{safe_filename(name, default='topology')}.png"


def topology_file(text: str) -> Path:
    """``text`` when it is a file, else the shipped topology it names (``h100-rail-1024``).

    Raises
    ------
    ConfigError
        Neither: the message lists the shipped names.
    """
    p = Path(text)
    if p.exists():
        return p
    return shipped.require(text, "topologies", "topology")


def _cmd_show(args: argparse.Namespace, console: Console) -> int:
    topo = load_topology(topology_file(args.file))
    summary = topo.summary()
    if args.json:
        emit_json(summary)
        if args.png or args.out:
            path = plot_topology(topo, drawing_path(topo.name, args.png, args.out))
            stderr_console().print(f"Drawing written to {path}")
        return 0
    _print_summary(summary, console)
    path = plot_topology(topo, drawing_path(topo.name, args.png, args.out))
    console.print(f"Drawing written to {path}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``topology`` command."""
    top = sub.add_parser("topology", help="inspect cluster topologies",
                         description="Inspect interconnect topologies (YAML files, or the shipped ones by name: "
                         + ", ".join(shipped.names("topologies")) + ").")
    top_sub = top.add_subparsers(dest="topology_command", metavar="ACTION", required=True)
    show = top_sub.add_parser(
        "show", help="print a topology summary and draw it",
        description="Print cards by type, scale-up domains, link tiers with oversubscription, "
        f"bisection bandwidth, sites and DCI links; write a PNG drawing (default {DEFAULT_OUT}/<name>.png, "
        "the name made file-safe).")
    show.add_argument("file", metavar="FILE|NAME",
                      help="topology YAML file, or a shipped topology's name (e.g. h100-rail-1024)")
    show.add_argument("--json", action="store_true",
                      help="print the summary as JSON (no PNG unless --png or --out)")
    show.add_argument("--out", metavar="DIR", help=f"folder for <name>.png (default: {DEFAULT_OUT})")
    show.add_argument("--png", metavar="PATH", help="write the drawing to exactly this file instead")
    show.set_defaults(handler=_cmd_show)
