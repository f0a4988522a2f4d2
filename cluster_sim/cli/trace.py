"""``cluster-sim trace stats FILE [--format F] [--json]``."""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..workload.traces import DESCRIPTIONS, FORMATS, trace_stats
from ._common import emit_json

__all__ = ["flatten", "format_value", "register"]


def flatten(obj: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(dotted.key, value)`` pairs of a nested mapping, in insertion order."""
    for k, v in obj.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            yield from flatten(v, key + ".")
        else:
            yield key, v


def format_value(v: Any) -> str:
    """A compact human form of a statistic (thousands separators, 4 significant digits)."""
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e15:
            return f"{int(v):,}"
        return f"{v:,.1f}" if abs(v) >= 1000 else f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(format_value(x) for x in v)
    if isinstance(v, Mapping):
        return "-"
    return str(v)


def _cmd_stats(args: argparse.Namespace, console: Console) -> int:
    stats = trace_stats(args.file, args.format)
    if args.json:
        emit_json(stats)
        return 0
    fmt = stats["format"]
    t = Table(title=f"{Path(args.file).name} (format {fmt})", title_justify="left",
              caption=DESCRIPTIONS.get(fmt, ""), caption_justify="left")
    t.add_column("statistic", no_wrap=True)
    t.add_column("value", justify="right", no_wrap=True)
    for key, value in flatten(stats):
        if key in ("file", "format"):
            continue
        t.add_row(Text(key), Text(format_value(value)))  # Text: no markup in trace values
    console.print(t)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``trace`` command."""
    tr = sub.add_parser("trace", help="inspect public cluster and LLM-serving traces",
                        description="Inspect trace files (Alibaba openb/PAI/spot, Philly, Azure LLM, Mooncake).")
    tr_sub = tr.add_subparsers(dest="trace_command", metavar="ACTION", required=True)
    st = tr_sub.add_parser("stats", help="print summary statistics of a trace file",
                           description="Print summary statistics of a trace file; the format is detected "
                           "from its header unless --format is given. Formats: " + ", ".join(FORMATS) + ".")
    st.add_argument("file", metavar="FILE", help="trace file (.csv, .csv.gz or .jsonl)")
    st.add_argument("--format", metavar="F", default=None,
                    help="trace format (default: detect); one of " + ", ".join(FORMATS))
    st.add_argument("--json", action="store_true", help="machine-readable output")
    st.set_defaults(handler=_cmd_stats)
