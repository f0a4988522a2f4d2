"""The run directory, written atomically: everything goes into ``.<dir>.tmp-XXXX`` then is renamed.

Contents (DESIGN.md 4): ``summary.json``, ``config.resolved.yaml``, ``jobs.parquet``,
``requests.parquet``, ``timeline.parquet``, ``serving_timeline.parquet`` (empty tables when not
simulated), further engine tables (``segments``, ``replicas``, ``services``) as ``<name>.parquet``,
``trace.json`` (Perfetto / Chrome trace, when the cluster engine ran), ``estimates.json`` and
``scaling.csv`` (when the experiment has them), ``topology.json``, ``plots/*.png`` and a
self-contained ``report.html``.

A failure while writing leaves nothing behind: no half-written directory, and an existing
run directory of the same name is untouched. Over an existing run directory only the
simulator's files are replaced; a non-empty directory it did not write is refused
(:mod:`cluster_sim.experiment.outdir`).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import yaml

from ..report import html, html_report, plots
from .outdir import MARKER, staged_dir, write_marker

if TYPE_CHECKING:  # pragma: no cover
    from .run import Result

__all__ = ["RUN_FILES", "save_run", "to_jsonable", "write_contents", "write_run"]

RUN_FILES = ("summary.json", "config.resolved.yaml", "jobs.parquet", "requests.parquet", "timeline.parquet",
             "serving_timeline.parquet", "topology.json", "report.html", MARKER)
"""Files every run directory has (plus plots/, and trace.json / estimates.json / scaling.csv when present)."""


def to_jsonable(x: Any) -> Any:
    """Plain JSON data: numpy scalars to Python, NaN/inf to None, tuples to lists, keys to str."""
    if isinstance(x, dict):
        return {str(k): to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(to_jsonable(obj), indent=2, default=str) + "\n", encoding="utf-8")


def _breakdown_with_shares(result: Result) -> pd.DataFrame:
    """Step-time breakdown per job, one column per component: ``seconds (share of the step)``."""
    df = result.breakdown_table()
    if df.empty:
        return df
    rows = []
    for _, r in df.iterrows():
        total = r["step_time_s"]
        row: dict[str, Any] = {"job": r["job"], "step_time_s": total}
        for c in df.columns:
            if c in ("job", "step_time_s"):
                continue
            share = r[c] / total if total > 0 else 0.0
            row[c] = f"{html.format_value(f'{c}_s', r[c])} ({share:.0%})"
        rows.append(row)
    return pd.DataFrame(rows)


def _estimates_table(result: Result) -> pd.DataFrame:
    rows = []
    for e in result.estimates:
        est = e.estimate
        p = est.plan
        rows.append({"job": e.name, "model": est.model, "cards": est.cards, "card types": "+".join(est.card_types),
                     "plan (tp/pp/dp/ep/cp, m)": f"{p.tp}/{p.pp}/{p.dp}/{p.ep}/{p.cp}, m={p.microbatches}",
                     "step_time_s": est.step_time_s, "mfu": est.mfu, "tflops_per_card": est.tflops_per_card,
                     "tokens_per_s": est.tokens_per_s, "memory_per_card_gib": est.memory.total_bytes / 2**30,
                     "days_to_train": e.days_to_train})
    return pd.DataFrame(rows)


def _scaling_table(result: Result) -> pd.DataFrame:
    frames = [df.assign(topology=label) for label, df in result.scaling.items()]
    if not frames:
        return pd.DataFrame()
    df = pd.concat(frames, ignore_index=True)
    return df[["topology", *[c for c in df.columns if c != "topology"]]]


def write_contents(result: Result, folder: Path) -> None:
    """Write every run file into ``folder`` (which must exist and be empty)."""
    cfg = result.config
    _write_json(folder / "summary.json", {**result.summary, "notes": list(result.notes)})
    (folder / "config.resolved.yaml").write_text(
        yaml.safe_dump(to_jsonable(cfg.model_dump(mode="json", exclude={"base_dir"})), sort_keys=False), encoding="utf-8")
    for name in ("jobs", "requests", "timeline", "serving_timeline"):
        getattr(result, name).to_parquet(folder / f"{name}.parquet", index=False)
    for name, table in sorted(result.tables.items()):
        table.to_parquet(folder / f"{name}.parquet", index=False)
    _write_json(folder / "topology.json", result.topology)
    if result.trace is not None:
        _write_json(folder / "trace.json", result.trace)
    if result.estimates:
        _write_json(folder / "estimates.json", {e.name: e.as_dict() for e in result.estimates})
    scaling = _scaling_table(result)
    if not scaling.empty:
        scaling.to_csv(folder / "scaling.csv", index=False)
    (folder / "plots").mkdir()
    figures = result.plot.all()
    pngs = {}
    for name, fig in figures.items():
        pngs[name] = plots.png_bytes(fig)
        (folder / "plots" / f"{name}.png").write_bytes(pngs[name])
    captions = {"breakdown": "Step-time breakdown per training job",
                "scaling": "Linear speedup and MFU against card count",
                "utilization": "Cluster utilization over time", "queue_length": "Jobs waiting over time",
                "jct_cdf": "Job completion time CDF", "latency_cdf": "Request latency CDFs",
                "kv_occupancy": "KV-cache occupancy over time",
                "pool_day": "Cards by state over the day, inference load, reclaims and lends, tariff"}
    from .run import HEADLINE_KEYS  # run.py imports this module: not at the top

    policy = cfg.model_dump(mode="json").get("policy")
    page = html.render_html(
        cfg.name, summary=result.summary, description=cfg.description, headline=HEADLINE_KEYS,
        tables={"Per service": html_report.service_table(result.tables.get("services"), result.summary),
                "Policies": html_report.policy_table(policy),
                "Training jobs": _estimates_table(result), "Step-time breakdown": _breakdown_with_shares(result),
                "Scaling": scaling},
        figures={captions.get(k, k): v for k, v in pngs.items()}, notes=result.notes,
        links=html_report.run_links(folder),
        config_yaml=(folder / "config.resolved.yaml").read_text(encoding="utf-8"))
    html.write_html(folder / "report.html", page)


def write_run(result: Result, folder: Path) -> None:
    """Write a complete run directory (files and marker) into the new, empty ``folder``."""
    folder.mkdir()
    write_contents(result, folder)
    write_marker(folder, "run")


def save_run(result: Result, out_dir: str | os.PathLike[str]) -> Path:
    """Write ``result``'s run directory to ``out_dir`` atomically and return its path.

    The files are written into a sibling temporary directory which is renamed to ``out_dir``
    only when complete (see :mod:`~cluster_sim.experiment.outdir`): over an earlier run the
    simulator's files are replaced and the user's own files kept; a non-empty directory the
    simulator did not write is refused with a ``ConfigError`` before anything is written. On
    any error ``out_dir`` is left as it was.
    """
    with staged_dir(out_dir, "run") as tmp:
        write_contents(result, tmp)
    return Path(out_dir)
