"""``cluster-sim sweep --out DIR``: the sweep's tables and figure, written atomically.

``DIR/runs.parquet`` (every run: the factors, ``cell``, ``seed``, ``key``, ``status``,
``error`` and the numeric summary keys, factor values as text), ``DIR/cells.csv`` (the per-cell
statistics), ``DIR/plots/sweep.png`` (:func:`~cluster_sim.report.sweep_plots.sweep_lines`) and
``DIR/report.html`` (:func:`~cluster_sim.report.html_report.write_sweep_report`: the cells table,
the figure, links to the two tables).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..report.figure_base import save_png
from ..report.html_report import write_sweep_report
from ..report.sweep_plots import sweep_lines
from .outdir import staged_dir
from .sweep import SweepResult

__all__ = ["save_sweep"]


def save_sweep(res: SweepResult, out_dir: str | os.PathLike[str]) -> Path:
    """Write ``runs.parquet``, ``cells.csv``, ``plots/sweep.png`` (when a metric has a mean) and ``report.html`` to ``out_dir``."""
    with staged_dir(out_dir, "sweep") as tmp:
        runs = res.runs.copy()
        for f in res.factors:  # a factor may mix types (1 and "auto"): Parquet wants one per column
            runs[f] = runs[f].astype(str)
        runs.to_parquet(tmp / "runs.parquet", index=False)
        res.cells.to_csv(tmp / "cells.csv", index=False)
        shown = [m for m in res.metrics if res.cells.loc[res.cells["metric"] == m, "mean"].notna().any()][:12]
        plots = []
        if shown:
            save_png(sweep_lines(res.cells, res.factors, shown), tmp / "plots" / "sweep.png")
            plots.append("plots/sweep.png")
        failed = int((res.runs["status"] != "ok").sum()) if "status" in res.runs else 0
        write_sweep_report(tmp, res.cells, plots, title=f"sweep: {', '.join(res.factors)}",
                           factors=res.factors, links={"runs.parquet": "runs.parquet", "cells.csv": "cells.csv"},
                           notes=[f"{len(res.runs)} runs, {failed} failed"] if len(res.runs) else [])
    return Path(out_dir)
