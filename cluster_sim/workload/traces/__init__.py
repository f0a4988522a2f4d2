"""Readers for public cluster and LLM-serving traces, with a format registry and auto-detection.

``FORMATS`` maps a format name to a ``(reader, stats)`` pair of functions taking a path.
:func:`detect_format` recognises a file from its header (first line);
:func:`trace_stats` returns the statistics of any supported file as a JSON-ready dict.
Every problem with a file raises :class:`~cluster_sim.errors.TraceError` naming the file (and
line and column for a bad value).

The LLM-serving readers (``azure_llm``, ``mooncake``) live in their own modules and are imported
only when used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from ...errors import TraceError
from . import alibaba, philly
from .common import PathLike, check_file, first_line, parse_json_line, traces_dir

__all__ = ["DESCRIPTIONS", "FORMATS", "TraceFormat", "detect_format", "read_trace", "trace_stats",
           "traces_dir"]


class TraceFormat(NamedTuple):
    """The two functions of a trace format."""

    reader: Callable[..., Any]
    stats: Callable[..., dict[str, Any]]


def _lazy(module: str, attr: str) -> Callable[..., Any]:
    """A function that imports ``traces.<module>`` on first call and forwards to ``attr``."""

    def call(path: PathLike, **kwargs: Any) -> Any:
        try:
            mod = importlib.import_module(f"{__name__}.{module}")
        except ModuleNotFoundError as exc:  # pragma: no cover - only before that module lands
            raise TraceError(f"{path}: the {module} reader is not available ({exc})") from None
        return getattr(mod, attr)(path, **kwargs)

    call.__name__ = f"{module}.{attr}"
    call.__qualname__ = call.__name__
    call.__doc__ = f"Forward to :func:`cluster_sim.workload.traces.{module}.{attr}` (imported on first use)."
    return call


FORMATS: Mapping[str, TraceFormat] = MappingProxyType({
    "alibaba_openb_pods": TraceFormat(alibaba.read_openb_pods, alibaba.openb_pods_stats),
    "alibaba_openb_nodes": TraceFormat(alibaba.read_openb_nodes, alibaba.openb_nodes_stats),
    "alibaba_pai_machines": TraceFormat(alibaba.read_pai_machines, alibaba.pai_machines_stats),
    "alibaba_spot_nodes": TraceFormat(alibaba.read_spot_nodes, alibaba.spot_nodes_stats),
    "philly_runtime": TraceFormat(philly.read_runtimes, philly.stats),
    "azure_llm": TraceFormat(_lazy("azure_llm", "read"), _lazy("azure_llm", "stats")),
    "mooncake": TraceFormat(_lazy("mooncake", "read"), _lazy("mooncake", "stats")),
})
"""Format name -> (reader, stats)."""

DESCRIPTIONS: Mapping[str, str] = MappingProxyType({
    "alibaba_openb_pods": "Alibaba GPU 2023 (openb) pod list -> JobTable of GPU pods",
    "alibaba_openb_nodes": "Alibaba GPU 2023 (openb) node list -> NodeInventory",
    "alibaba_pai_machines": "Alibaba PAI 2020 machine spec -> NodeInventory",
    "alibaba_spot_nodes": "Alibaba spot-GPU 2026 node list -> NodeInventory",
    "philly_runtime": "Microsoft Philly job run times (seconds) -> float64 array",
    "azure_llm": "Azure LLM inference trace 2023 (CSV) -> requests",
    "mooncake": "Mooncake FAST'25 trace (JSON lines, ms timestamps, prefix-block hashes) -> requests",
})

# (format, columns that must all appear in the header), checked in order.
_HEADERS: tuple[tuple[str, frozenset[str]], ...] = (
    ("alibaba_openb_pods", frozenset({"name", "num_gpu", "gpu_milli"})),
    ("alibaba_openb_nodes", frozenset({"sn", "gpu", "model"})),
    ("alibaba_pai_machines", frozenset({"machine", "gpu_type", "cap_gpu"})),
    ("alibaba_spot_nodes", frozenset({"gpu_model", "gpu_capacity_num"})),
    ("azure_llm", frozenset({"TIMESTAMP", "ContextTokens", "GeneratedTokens"})),
    ("philly_runtime", frozenset({"runtime"})),
)


def detect_format(path: PathLike) -> str:
    """The format name of a trace file, from its first line (CSV header or a JSON object)."""
    p = check_file(path)
    line = first_line(p).strip()
    if not line:
        raise TraceError(f"{p.name}: empty first line; cannot detect the trace format")
    if line.startswith("{"):
        try:
            obj = parse_json_line(line, p.name)
        except TraceError:  # not a JSON object line: reported below as an unknown format
            obj = None
        if isinstance(obj, dict) and {"timestamp", "input_length", "output_length"} <= obj.keys():
            return "mooncake"
    else:
        cols = {c.strip().strip('"') for c in line.split(",")}
        for name, need in _HEADERS:
            if need <= cols:
                return name
    shown = line if len(line) <= 80 else line[:77] + "..."
    raise TraceError(f"{p.name}: unknown trace format (first line {shown!r}); "
                     f"pass a format, one of: {', '.join(FORMATS)}")


def _format(path: PathLike, format: str | None) -> str:
    if format is None:
        return detect_format(path)
    if format not in FORMATS:
        raise TraceError(f"unknown trace format {format!r}; known: {', '.join(FORMATS)}")
    return format


def read_trace(path: PathLike, format: str | None = None, **kwargs: Any) -> Any:
    """Read a trace with its format's reader (auto-detected unless ``format`` is given)."""
    return FORMATS[_format(path, format)].reader(path, **kwargs)


def trace_stats(path: PathLike, format: str | None = None) -> dict[str, Any]:
    """Statistics of a trace: ``{"file", "format", ...}`` plus the format's own keys."""
    fmt = _format(path, format)
    check_file(path)
    stats = FORMATS[fmt].stats(path)
    return {"file": str(path), "format": fmt, **stats}
