"""What every figure module of :mod:`cluster_sim.report` shares: the figure factory, input
checks, the time axis, the line colours and PNG output (:mod:`.plots`, :mod:`.pool_plots`)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..errors import ClusterSimError
from .files import write_bytes_atomic

__all__ = ["LINE_COLORS", "need", "need_cols", "new_figure", "png_bytes", "save_png", "time_axis"]

LINE_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
"""Line colours, in the order series take them."""


def new_figure(width: float = 7.5, height: float = 4.2, ncols: int = 1) -> tuple[Figure, list]:
    """A constrained-layout figure with ``ncols`` gridded axes in one row."""
    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0].tolist()
    for ax in axes:
        ax.grid(True, alpha=0.3)
    return fig, axes


def need(df: pd.DataFrame | None, cols: Sequence[str], what: str) -> pd.DataFrame:
    """``df`` if it has rows and the columns ``cols``, else a :class:`ClusterSimError` naming ``what``."""
    if df is None or len(df) == 0:
        raise ClusterSimError(f"cannot plot {what}: no data")
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ClusterSimError(f"cannot plot {what}: missing column(s) {', '.join(missing)}; "
                              f"have {', '.join(map(str, df.columns))}")
    return df


def png_bytes(fig: Figure) -> bytes:
    """The figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def save_png(fig: Figure, path: str | Path) -> Path:
    """Write the figure as a PNG file (atomically, parents created) and return its path."""
    return write_bytes_atomic(path, png_bytes(fig))


def time_axis(t_s: np.ndarray) -> tuple[np.ndarray, str]:
    """Times in the largest unit that still gives three of them over the span, and its name."""
    span = float(np.nanmax(t_s)) if len(t_s) else 0.0
    for size, name in ((86400.0, "days"), (3600.0, "hours"), (60.0, "minutes")):
        if span >= 3 * size:
            return t_s / size, name
    return t_s, "seconds"


def need_cols(df: pd.DataFrame, cols: Sequence[str], what: str) -> pd.DataFrame:
    """Like :func:`need` but zero rows are allowed (an optional input with nothing in it)."""
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ClusterSimError(f"cannot plot {what}: missing column(s) {', '.join(missing)}; "
                              f"have {', '.join(map(str, df.columns))}")
    return df
