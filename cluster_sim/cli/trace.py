"""``cluster-sim trace stats FILE [--format F] [--json]`` and
``cluster-sim trace export RUN_DIR [--out FILE] [--max-requests N] [--max-tracks N]``."""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..errors import ConfigError
from ..metrics.trace_export import DEFAULT_MAX_REQUESTS, chrome_trace, write_chrome_trace
from ..report.files import os_error
from ..workload.traces import DESCRIPTIONS, FORMATS, trace_stats
from ._common import emit_json

__all__ = ["export_run_trace", "flatten", "format_value", "register"]

_FRAMES = ("segments", "timeline", "jobs", "requests", "serving_timeline", "replicas")


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


def _count(text: str, flag: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{flag}: {text!r} is not an integer") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"{flag}: must be >= 0, got {n}")
    return n


def export_run_trace(run_dir: str | Path, out: str | Path | None = None, *,
                     max_requests: int = DEFAULT_MAX_REQUESTS, max_tracks: int = 64) -> dict[str, Any]:
    """Rebuild the Perfetto trace of a run directory from its Parquet files and write it.

    Reads ``segments``, ``timeline``, ``jobs``, ``requests``, ``serving_timeline`` and
    ``replicas`` ``.parquet`` (those present), writes ``out`` (default ``run_dir/trace.json``) and
    returns ``{"out", "events", **otherData}``.
    """
    d = Path(run_dir)
    if not d.is_dir():
        raise ConfigError(f"{d}: not a directory (give a run directory written by cluster-sim run)")
    if not (d / "summary.json").is_file():
        raise ConfigError(f"{d}: not a run directory (no summary.json)")
    frames: dict[str, pd.DataFrame] = {}
    for name in _FRAMES:
        f = d / f"{name}.parquet"
        if f.is_file():
            try:
                frames[name] = pd.read_parquet(f)
            except OSError as exc:
                raise os_error(f, exc, "cannot read") from None
            except ValueError as exc:  # pyarrow: not a Parquet file
                raise ConfigError(f"{f}: not a readable Parquet file: {exc}") from None
    if not any(len(frames.get(n, ())) for n in ("segments", "requests", "timeline")):
        raise ConfigError(f"{d}: no segments, timeline or requests to trace (an estimate-only run)")
    doc = chrome_trace(frames.get("segments", pd.DataFrame()), frames.get("timeline"), max_tracks=max_tracks,
                       jobs=frames.get("jobs"), requests=frames.get("requests"),
                       serving_timeline=frames.get("serving_timeline"), replicas=frames.get("replicas"),
                       max_requests=max_requests)
    target = Path(out) if out is not None else d / "trace.json"
    if target.is_dir():
        raise ConfigError(f"{target}: is a directory; give a file name")
    try:
        write_chrome_trace(doc, target)
    except OSError as exc:
        raise os_error(target, exc) from None
    return {"out": str(target), "events": len(doc["traceEvents"]), **doc["otherData"]}


def _cmd_export(args: argparse.Namespace, console: Console) -> int:
    info = export_run_trace(args.run_dir, args.out, max_requests=args.max_requests, max_tracks=args.max_tracks)
    if args.json:
        emit_json(info)
        return 0
    line = f"wrote {info['out']}: {info['events']:,} events"
    if "requests_written" in info:
        line += (f", {info['requests_written']:,} of {info['requests_finished']:,} finished requests "
                 f"(every {info['request_stride']})")
    console.print(Text(line))
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
    ex = tr_sub.add_parser(
        "export", help="rebuild a run directory's Perfetto trace.json from its Parquet files",
        description="Rebuild the Perfetto / Chrome trace of a run directory from its recorded tables: "
        "training jobs per scale-up domain, serving requests per replica (every k-th when there are more "
        "than --max-requests), batch size and KV occupancy counters, KV transfers as flows. Open the "
        "file in ui.perfetto.dev.")
    ex.add_argument("run_dir", metavar="RUN_DIR", help="run directory (cluster-sim run --out)")
    ex.add_argument("--out", metavar="FILE", default=None, help="output file (default: RUN_DIR/trace.json)")
    ex.add_argument("--max-requests", metavar="N", type=lambda t: _count(t, "--max-requests"),
                    default=DEFAULT_MAX_REQUESTS,
                    help=f"most requests written as slices, every k-th by id beyond (default {DEFAULT_MAX_REQUESTS:,})")
    ex.add_argument("--max-tracks", metavar="N", type=lambda t: _count(t, "--max-tracks"), default=64,
                    help="most domains and replicas given tracks, the busiest (default 64)")
    ex.add_argument("--json", action="store_true", help="machine-readable output")
    ex.set_defaults(handler=_cmd_export)
