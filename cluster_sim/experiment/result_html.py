"""A :class:`~cluster_sim.experiment.run.Result` as compact HTML, for a notebook cell that ends with one.

``Result._repr_html_`` calls :func:`result_html`: the run's name and cluster, a table of the
headline KPIs the run measured (grouped by engine, as ``report.html``'s cards are), the main
figures inline as base64 PNGs and the notes collapsed. Everything is in the one string: no
scripts, no style sheet, no network, so it renders the same in Jupyter, VS Code or an exported
notebook. The full page with every table is ``res.save(DIR)``'s ``report.html``.

>>> from types import SimpleNamespace
>>> class _Plot:
...     def available(self): return []
>>> fake = SimpleNamespace(config=SimpleNamespace(name="x<y", description="", seed=0),
...                        summary={"training.mfu": 0.41}, topology={}, notes=(), plot=_Plot())
>>> page = result_html(fake)
>>> "x&lt;y" in page and "41.0%" in page and "<img" not in page
True
"""

from __future__ import annotations

import base64
import html as _html
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..report.figure_base import png_bytes
from ..report.html import format_value, kpi_groups

if TYPE_CHECKING:  # pragma: no cover
    from .run import Result

__all__ = ["FIGURE_CAPTIONS", "MAIN_FIGURES", "MAX_FIGURES", "result_html"]

MAIN_FIGURES = ("breakdown", "scaling", "utilization", "latency_cdf", "pool_day", "serving_faults",
                "jct_cdf", "kv_occupancy", "queue_length")
"""The figures a notebook cell shows first, in this order, when the run has data for them."""

MAX_FIGURES = 3
"""How many figures a cell shows at most (a display choice: ``res.plot.all()`` has every one)."""

FIGURE_CAPTIONS = {"breakdown": "Step-time breakdown per training job",
                   "scaling": "Linear speedup and MFU against card count",
                   "utilization": "Cluster utilization over time", "queue_length": "Jobs waiting over time",
                   "jct_cdf": "Job completion time CDF", "latency_cdf": "Request latency CDFs",
                   "kv_occupancy": "KV-cache occupancy over time",
                   "pool_day": "Cards by state over the day",
                   "serving_faults": "Serving through replica failures"}

_CELL = "padding:2px 8px;border-bottom:1px solid #e5e5e5"


def _kpi_table(summary: dict[str, Any], keys: Sequence[str]) -> str:
    rows = []
    for group, names in kpi_groups(summary, keys):
        for i, k in enumerate(names):
            label = _html.escape(group) if i == 0 else ""
            rows.append(f'<tr><td style="{_CELL};color:#666">{label}</td>'
                        f'<td style="{_CELL};text-align:left"><code>{_html.escape(k)}</code></td>'
                        f'<td style="{_CELL};text-align:right">{_html.escape(format_value(k, summary[k]))}</td></tr>')
    if not rows:
        return "<p><i>no headline metric in this run's summary</i></p>"
    return ('<table style="border-collapse:collapse;font-size:0.9em"><thead><tr>'
            f'<th style="{_CELL}"></th><th style="{_CELL};text-align:left">metric</th>'
            f'<th style="{_CELL};text-align:right">value</th></tr></thead><tbody>{"".join(rows)}</tbody></table>')


def _figure(result: Result, name: str) -> str:
    data = png_bytes(getattr(result.plot, name)())
    b64 = base64.b64encode(data).decode("ascii")
    cap = _html.escape(FIGURE_CAPTIONS.get(name, name))
    return (f'<figure style="margin:0 0 0.8em 0"><img alt="{cap}" style="max-width:100%;height:auto" '
            f'src="data:image/png;base64,{b64}"><figcaption style="color:#555;font-size:0.85em">'
            f"{cap} (<code>res.plot.{name}()</code>)</figcaption></figure>")


def result_html(result: Result, *, max_figures: int = MAX_FIGURES) -> str:
    """The compact HTML of ``result``: header, headline KPI table, up to ``max_figures`` figures
    (the first of :data:`MAIN_FIGURES` the run has data for) and the notes, collapsed."""
    from .run import HEADLINE_KEYS  # run.py imports this module: not at the top

    cfg, summary = result.config, result.summary
    topo = summary.get("cluster.topology") or result.topology.get("name")
    cards = summary.get("cluster.cards")
    where = ", ".join(x for x in (f"topology {topo}" if topo else "",
                                  f"{format_value('cards', cards)} cards" if cards is not None else "",
                                  f"seed {cfg.seed}") if x)
    parts = ['<div class="cluster-sim-result">',
             f"<p><b>Result {_html.escape(str(cfg.name))}</b> <span style=\"color:#666\">"
             f"({_html.escape(where)})</span></p>"]
    if cfg.description:
        parts.append(f'<p style="color:#444">{_html.escape(str(cfg.description))}</p>')
    parts.append(_kpi_table(summary, HEADLINE_KEYS))
    have = set(result.plot.available())
    shown = [n for n in MAIN_FIGURES if n in have][:max(0, max_figures)]
    parts += [_figure(result, n) for n in shown]
    if result.notes:
        items = "".join(f"<li>{_html.escape(n)}</li>" for n in result.notes)
        parts.append(f"<details><summary>{len(result.notes)} note(s)</summary><ul>{items}</ul></details>")
    n_keys = sum(1 for v in summary.values() if not isinstance(v, dict))
    rest = sorted(have - set(shown))
    parts.append(f'<p style="color:#666;font-size:0.85em">{n_keys} summary keys in <code>res.summary</code>'
                 + (f"; more figures: {', '.join(f'<code>res.plot.{n}()</code>' for n in rest)}" if rest else "")
                 + "; <code>res.save(DIR)</code> writes the full <code>report.html</code>.</p>")
    parts.append("</div>")
    return "\n".join(parts)
