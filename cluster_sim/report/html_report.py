"""The pieces of a run's ``report.html`` that are more than layout, and the report of a set of runs.

* :func:`service_table`, :func:`policy_table`: the per-service and per-policy tables of a run.
* :func:`run_links`: the run directory's files, as relative links.
* :func:`write_sweep_report`: ``report.html`` of a directory of runs (``cluster-sim compare
  --out``, and any sweep writer): the comparison table (factor and seed columns, the headline
  metrics; every column in a collapsed full table), the plots embedded, a link to each run's own
  report and to the table files. A sweep writer calls
  ``write_sweep_report(out_dir, table, plots, factors=[...], runs=[...])``.

Pure functions of DataFrames and paths; nothing here imports the engine or the experiment.
"""

from __future__ import annotations

import html as _html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from .files import write_bytes_atomic
from .html import MetricRefs, img_html, page_head, table_html
from .metric_links import MetricIndex, default_index

__all__ = ["SERVICE_METRICS", "policy_table", "render_sweep_html", "run_links", "service_table",
           "write_sweep_report"]

SERVICE_METRICS = ("ttft_s.p50", "ttft_s.p99", "tpot_s.p50", "tpot_s.p99", "e2e_s.p99", "slo_attainment",
                   "goodput_rps", "tokens_per_s_per_card", "utilization.busy", "cost_per_mtok_usd")
"""Per-service summary keys (``inference.<service>.<metric>``) in the per-service table."""

_SERVICE_COLUMNS = ("service", "model", "mode", "cards", "requests")


def service_table(services: pd.DataFrame | None, summary: Mapping[str, Any]) -> pd.DataFrame:
    """One row per service: model, mode, cards, requests, then :data:`SERVICE_METRICS` from the
    summary (``inference.<service>.<metric>``). Column headers link to the serving definitions."""
    if services is None or not len(services) or "service" not in services:
        return pd.DataFrame()
    rows = []
    for rec in services.to_dict("records"):
        name = str(rec["service"])
        row = {c: rec[c] for c in _SERVICE_COLUMNS if c in rec}
        for m in SERVICE_METRICS:
            v = summary.get(f"inference.{name}.{m}")
            if v is not None:
                row[m] = v
        rows.append(row)
    df = pd.DataFrame(rows)
    df.attrs["metric_key"] = lambda c: f"inference.{c}" if c in SERVICE_METRICS else None
    return df


def policy_table(policy: Mapping[str, Any] | None) -> pd.DataFrame:
    """The run's policies: one row per decision (``policy.training.placement``, ...), its name and
    parameters (``{name, params}`` entries; other settings as their value)."""
    rows: list[dict[str, Any]] = []

    def walk(node: Mapping[str, Any], path: str) -> None:
        for k, v in node.items():
            where = f"{path}.{k}"
            if isinstance(v, Mapping) and "name" in v:
                params = v.get("params") or {}
                rows.append({"policy": where, "name": str(v["name"]),
                             "parameters": json.dumps(params, sort_keys=True, default=str) if params else ""})
            elif isinstance(v, Mapping):
                if v and all(not isinstance(x, Mapping) for x in v.values()):
                    rows.append({"policy": where, "name": "",
                                 "parameters": json.dumps(dict(v), sort_keys=True, default=str)})
                else:
                    walk(v, where)
            else:
                rows.append({"policy": where, "name": "-" if v is None else str(v), "parameters": ""})

    if policy:
        walk(policy, "policy")
    return pd.DataFrame(rows)


def run_links(folder: str | Path, skip: Sequence[str] = ("report.html",)) -> dict[str, str]:
    """The files of a run directory as ``{label: relative path}``: the Parquet tables and
    ``trace.json`` first, then the other data files, then ``plots/*.png``; hidden files and
    ``skip`` left out."""
    d = Path(folder)
    files = sorted(p.name for p in d.iterdir() if p.is_file() and not p.name.startswith(".") and p.name not in skip)
    first = [f for f in files if f.endswith(".parquet")] + [f for f in files if f == "trace.json"]
    rest = [f for f in files if f not in first]
    plots = sorted(f"plots/{p.name}" for p in (d / "plots").glob("*.png")) if (d / "plots").is_dir() else []
    return {f: f for f in [*first, *rest, *plots]}


def _columns(table: pd.DataFrame, factors: Sequence[str], headline: Sequence[str]) -> list[str]:
    lead = [c for c in [*factors, "seed", "seeds", "n"] if c in table.columns]
    heads = [c for c in table.columns if c not in lead and (c in headline or c.split(":")[0] in headline
                                                            or c.removesuffix(".mean") in headline)]
    errs = [c for c in table.columns if c == "error"]
    return list(dict.fromkeys([*lead, *heads, *errs]))


def render_sweep_html(title: str, table: pd.DataFrame, plots: Sequence[str | Path] = (), *,
                      factors: Sequence[str] = (), headline: Sequence[str] = (),
                      runs: Sequence[str] | None = None, links: Mapping[str, str] | None = None,
                      notes: Sequence[str] = (), base: str | Path | None = None,
                      index: MetricIndex | None = None) -> str:
    """The page of :func:`write_sweep_report` as one HTML string (parameters there)."""
    refs = MetricRefs(index if index is not None else default_index())
    parts = page_head(title, "comparison")
    n = len(table)
    parts.append(f"<p>{n:,} run{'s' if n != 1 else ''}"
                 + (f" over {', '.join(_html.escape(f) for f in factors)}" if factors else "") + ".</p>")
    if plots:
        parts.append('<section id="figures"><h2>Figures</h2><div class="figs">')
        for p in plots:
            path = Path(p) if base is None or Path(p).is_absolute() else Path(base) / p
            parts.append(img_html(path.read_bytes(), Path(p).stem.replace("_", " ")))
        parts.append("</div></section>")
    cols = _columns(table, factors, headline) if headline else list(table.columns)
    row_links = [f"{r.rstrip('/')}/report.html" for r in runs] if runs is not None else None
    parts.append('<section id="tables"><h2>Comparison</h2>')
    parts.append(table_html(table[cols], refs, key_of=_key_of, row_links=row_links))
    parts.append("</section>")
    if links:
        items = "".join(f'<li><a href="{_html.escape(v, quote=True)}">{_html.escape(k)}</a></li>'
                        for k, v in links.items())
        parts.append(f'<h2 id="files">Files</h2><ul class="files">{items}</ul>')
    if notes:
        parts.append('<h2>Notes</h2><ul class="notes">' + "".join(f"<li>{_html.escape(x)}</li>" for x in notes)
                     + "</ul>")
    if len(cols) < len(table.columns):
        parts += [f'<details id="all-keys"><summary>All {len(table.columns)} columns</summary>',
                  table_html(table, refs, key_of=_key_of, row_links=row_links), "</details>"]
    parts.append(refs.definitions())
    parts.append("</body></html>")
    return "\n".join(parts)


def _key_of(column: str) -> str:
    """The summary key of a comparison column (``key``, ``key.mean``/``.ci95``/``.std`` of a
    seed summary)."""
    for suffix in (".mean", ".ci95", ".ci_low", ".ci_high", ".std", ".n"):
        if column.endswith(suffix) and column.count(".") > 1:
            return column.removesuffix(suffix)
    return column


def write_sweep_report(out_dir: str | Path, table: pd.DataFrame, plots: Sequence[str | Path] = (), *,
                       title: str | None = None, factors: Sequence[str] = (), headline: Sequence[str] = (),
                       runs: Sequence[str] | None = None, links: Mapping[str, str] | None = None,
                       notes: Sequence[str] = ()) -> Path:
    """Write ``out_dir/report.html`` for a directory of runs and return its path.

    Parameters
    ----------
    out_dir : path
        The sweep's (or compare's) output directory; must exist.
    table : DataFrame
        One row per run (or per cell): factor columns, ``seed``, summary keys; an ``error``
        column is shown as is.
    plots : sequence of paths
        PNG files to embed (relative paths are under ``out_dir``).
    title : str, optional
        Page title (default: the directory's name).
    factors : sequence of str
        The factor columns, shown first.
    headline : sequence of str
        Summary keys shown in the comparison table (default: every column); the full table is
        then collapsed below it.
    runs : sequence of str, optional
        Relative run directory per row: its first cell links to ``<run>/report.html``.
    links : mapping label -> relative path, optional
        Further files (``compare.csv``, the results store).
    notes : sequence of str
        Shown under the table.
    """
    d = Path(out_dir)
    if runs is not None and len(runs) != len(table):
        raise ValueError(f"runs: {len(runs)} paths for {len(table)} rows")
    page = render_sweep_html(title or d.name, table, plots, factors=factors, headline=headline, runs=runs,
                             links=links, notes=notes, base=d)
    return write_bytes_atomic(d / "report.html", page.encode("utf-8"))

