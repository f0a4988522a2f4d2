"""A self-contained ``report.html``: inline CSS, figures embedded as base64 PNGs, tables, notes.

One file that opens offline in any browser and can be mailed around; no scripts, no external
assets. The page reads top down: headline KPIs (cards grouped by engine), the figures, the
per-service, per-policy and other tables (each in a horizontally scrollable box, so a wide table
never runs off the page), links to the run's files (relative: the page sits in the run
directory), notes, then the full summary and the configuration collapsed (``<details>``) and
the definitions of the metrics named on the page, quoted from ``docs/metrics.md``
(:mod:`.metric_links`): every metric name links to its definition there (an in-page anchor, so
the link resolves wherever the file is opened).

>>> page = render_html("demo", summary={"training.mfu": 0.41}, tables={}, figures={})
>>> "<title>demo</title>" in page and "41.0%" in page
True
"""

from __future__ import annotations

import base64
import datetime as _dt
import html as _html
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from .metric_links import MetricIndex, default_index
from .plots import png_bytes

__all__ = ["CSS", "KPI_EXTRA", "Links", "MetricRefs", "format_value", "img_html", "kpi_groups", "page_head",
           "render_html", "table_html", "write_html"]

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:1.5em auto;max-width:1200px;
     color:#222;padding:0 1em;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em} h2{font-size:1.25em;margin-top:1.6em;border-bottom:1px solid #ddd}
h3{font-size:1em;margin:.8em 0 .3em;color:#444}
.meta{color:#666;font-size:.9em}
a{color:#1a5fb4;text-decoration:none} a:hover{text-decoration:underline}
.kpi-grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(175px,1fr));gap:.6em}
.kpi{border:1px solid #d8dde3;border-radius:6px;padding:.45em .7em;background:#f8fafc}
.kpi .v{font-size:1.4em;font-weight:600;white-space:nowrap}
.kpi .k{font-size:.78em;color:#555;overflow-wrap:anywhere}
.kpi .s{font-size:.72em;color:#888}
.figs{display:grid;grid-template-columns:repeat(auto-fit,minmax(460px,1fr));gap:1em}
figure{margin:0} figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:#555;font-size:.9em}
.table-wrap{max-width:100%;overflow-x:auto;margin:.6em 0}
table{border-collapse:collapse;font-size:.88em}
th,td{border:1px solid #ddd;padding:.25em .55em;text-align:right;vertical-align:top}
th{background:#f3f5f7;overflow-wrap:break-word} td{white-space:nowrap}
td:first-child,th:first-child{text-align:left} td.text{white-space:normal;overflow-wrap:anywhere;text-align:left}
tr:nth-child(even) td{background:#fafafa}
details{margin:1em 0} details>summary{cursor:pointer;font-weight:600;font-size:1.1em}
pre{max-width:100%;overflow-x:auto;background:#f7f7f7;padding:.6em;font-size:.85em}
ul.notes li,ul.files li{margin:.2em 0}
dl.defs dt{font-family:monospace;margin-top:.5em;overflow-wrap:anywhere} dl.defs dd{margin-left:1.5em;color:#333}
dl.defs .src{color:#888;font-size:.85em}
"""

# Names shown as percentages; ``*_s`` names (not ``*_per_s``) are shown as durations.
_PERCENT_HINTS = ("mfu", "hfu", "linear_speedup", "utilization", "attainment", "fraction", "share")
_PERCENT_NAMES = ("allocated", "busy")  # utilization.allocated, utilization.busy
_STATS = ("p50", "p90", "p95", "p99", "mean", "max", "min", "std")

KPI_EXTRA = ("pool.utilization.busy", "pool.utilization.allocated", "training.goodput", "cost.energy_usd")
"""Keys shown as KPI cards besides the headline keys, when the run has them."""

_GROUPS = (("Training", ("training.", "utilization.", "fragmentation.", "queue.")), ("Serving", ("inference.",)),
           ("Pool", ("pool.",)), ("Cost and energy", ("cost", "energy")))

Links = Mapping[str, str]
"""File links of a report: label -> relative path."""


def format_value(key: str, value: Any) -> str:
    """A human string for a summary value: shares as %, ``*_s`` as durations, big numbers grouped."""
    if value is None:
        return "-"
    if isinstance(value, Mapping):  # summary["sources"]: key group -> producer
        return "; ".join(f"{k}: {v}" for k, v in value.items())
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    v = float(value)
    if not math.isfinite(v):
        return str(v)
    parts = key.split(".")
    name = parts[-2] if len(parts) > 1 and parts[-1] in _STATS else parts[-1]
    if name.endswith("_s") and "per_" not in name:
        return _fmt_seconds(v)
    if name.startswith("days_") or name.endswith("_days"):
        return f"{v:,.1f} d"
    if any(h in name for h in _PERCENT_HINTS) or (name in _PERCENT_NAMES):
        return f"{v:.1%}"
    if isinstance(value, int) or v.is_integer():
        return f"{int(v):,}"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.4g}"


def _fmt_seconds(v: float) -> str:
    if v == 0:
        return "0 s"
    if abs(v) < 1e-3:
        return f"{v * 1e6:.3g} us"
    if abs(v) < 1:
        return f"{v * 1e3:.3g} ms"
    if abs(v) < 120:
        return f"{v:.3g} s"
    if abs(v) < 7200:
        return f"{v / 60:.3g} min"
    if abs(v) < 3 * 86400:
        return f"{v / 3600:.3g} h"
    return f"{v / 86400:.3g} d"


class MetricRefs:
    """Metric links of one page: key -> in-page anchor of its definition, and the entries used."""

    def __init__(self, index: MetricIndex) -> None:
        self.index = index
        self.used: dict[int, None] = {}

    def name(self, key: str, label: str | None = None) -> str:
        """``label`` (default ``key``), escaped, linked to ``key``'s definition when there is one."""
        text = _html.escape(label if label is not None else key)
        i = self.index.lookup(key)
        if i is None:
            return text
        self.used[i] = None
        return f'<a class="metric" href="#def-{i}">{text}</a>'

    def definitions(self) -> str:
        """The "Metric definitions" section of the entries linked so far ("" if none)."""
        if not self.used:
            return ""
        items = []
        for i in sorted(self.used):
            e = self.index.entries[i]
            names = ", ".join(_html.escape(n) for n in e["names"])
            items.append(f'<dt id="def-{i}">{names}</dt><dd>{_md_inline(e["definition"])} '
                         f'<span class="src">(docs/metrics.md#{_html.escape(e["anchor"])}, '
                         f'&ldquo;{_html.escape(e["section"])}&rdquo;)</span></dd>')
        return ('<h2 id="definitions">Metric definitions</h2><p class="meta">Quoted from docs/metrics.md; '
                'each metric name on this page links here.</p><dl class="defs">' + "".join(items) + "</dl>")


def _md_inline(text: str) -> str:
    """Markdown inline code (backticks) as ``<code>``; everything else escaped."""
    return re.sub(r"`([^`]+)`", lambda m: f"<code>{m.group(1)}</code>", _html.escape(text))


def _breakable(label_html: str) -> str:
    """A header may break after ``.`` and ``_`` (``<wbr>``), never inside a word; tags kept."""
    parts = re.split(r"(<[^>]*>)", label_html)
    return "".join(p if p.startswith("<") else p.replace(".", ".<wbr>").replace("_", "_<wbr>") for p in parts)


def _wrap(table: str) -> str:
    return f'<div class="table-wrap">{table}</div>'


def table_html(df: pd.DataFrame, refs: MetricRefs | None = None, *, key_of: Any = None,
               formats: Mapping[str, Any] | None = None, row_links: Sequence[str] | None = None) -> str:
    """``df`` as an HTML table in a scrollable box; headers linked to metric definitions through
    ``refs`` (``key_of(column) -> summary key``, default the column itself); with ``row_links``
    (relative paths, one per row) each row's first cell links there."""
    cols = [str(c) for c in df.columns]
    heads = []
    for c in cols:
        key = key_of(c) if key_of is not None else c
        label = refs.name(key, c) if refs is not None and key else _html.escape(c)
        heads.append(f"<th>{_breakable(label)}</th>")
    rows = []
    for n, r in enumerate(df.itertuples(index=False, name=None)):
        cells = []
        for j, (c, v) in enumerate(zip(cols, r, strict=True)):
            fmt = (formats or {}).get(c)
            text = _html.escape(fmt(v) if callable(fmt) else format_value(c, v))
            if j == 0 and row_links is not None:
                text = f'<a href="{_html.escape(row_links[n], quote=True)}">{text}</a>'
            cls = ' class="text"' if isinstance(v, str) and len(v) > 40 and " " in v else ""
            cells.append(f"<td{cls}>{text}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return _wrap(f"<table><thead><tr>{''.join(heads)}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _summary_table(summary: Mapping[str, Any], refs: MetricRefs) -> str:
    rows = "".join(
        f"<tr><td>{refs.name(k)}</td><td>{_html.escape(format_value(k, v))}</td></tr>"
        for k, v in summary.items() if not isinstance(v, Mapping)
    )
    return _wrap(f"<table><thead><tr><th>metric</th><th>value</th></tr></thead><tbody>{rows}</tbody></table>")


def _sources_table(sources: Mapping[str, Any]) -> str:
    rows = "".join(f"<tr><td>{_html.escape(str(k))}</td><td>{_html.escape(str(v))}</td></tr>"
                   for k, v in sources.items())
    return _wrap(f"<table><thead><tr><th>keys</th><th>produced by</th></tr></thead><tbody>{rows}</tbody></table>")


def img_html(fig: Figure | bytes, caption: str) -> str:
    """A figure embedded as a base64 PNG with its caption."""
    data = fig if isinstance(fig, bytes) else png_bytes(fig)
    b64 = base64.b64encode(data).decode("ascii")
    cap = _html.escape(caption)
    return (f'<figure><img alt="{cap}" src="data:image/png;base64,{b64}">'
            f"<figcaption>{cap}</figcaption></figure>")


def kpi_groups(summary: Mapping[str, Any], keys: Sequence[str]) -> list[tuple[str, list[str]]]:
    """``keys`` (plus :data:`KPI_EXTRA`) the summary has a number for, grouped by engine
    (Training, Serving, Pool, Cost and energy, then Other) in ``keys`` order; ``sim.*`` is left out."""
    chosen = [k for k in dict.fromkeys([*keys, *KPI_EXTRA])
              if isinstance(summary.get(k), (int, float)) and not isinstance(summary.get(k), bool)
              and math.isfinite(float(summary[k])) and not k.startswith("sim.")]
    out = []
    for label, prefixes in _GROUPS:
        group = [k for k in chosen if k.startswith(prefixes)]
        if group:
            out.append((label, group))
    placed = {k for _, g in out for k in g}
    rest = [k for k in chosen if k not in placed]   # a headline key of another producer (failures, ...)
    if rest:
        out.append(("Other", rest))
    return out


def _kpis(summary: Mapping[str, Any], keys: Sequence[str], refs: MetricRefs) -> str:
    groups = kpi_groups(summary, keys)
    if not groups:
        return ""
    raw = summary.get("sources")
    sources: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    parts = ['<section id="kpis"><h2>Headline</h2>']
    for label, group in groups:
        parts.append(f"<h3>{_html.escape(label)}</h3><div class=\"kpi-grid\">")
        for k in group:
            src = _source_of(k, sources)
            parts.append(f'<div class="kpi"><div class="v">{_html.escape(format_value(k, summary[k]))}</div>'
                         f'<div class="k">{refs.name(k)}</div>'
                         + (f'<div class="s">{_html.escape(src)}</div>' if src else "") + "</div>")
        parts.append("</div>")
    parts.append("</section>")
    return "".join(parts)


def _source_of(key: str, sources: Mapping[str, Any]) -> str:
    if key in sources:
        return str(sources[key])
    best = ""
    for pat in sources:
        p = str(pat)
        if p.endswith(".*") and key.startswith(p[:-1]) and len(p) > len(best):
            best = p
    return str(sources[best]) if best else ""


def _files(links: Links) -> str:
    items = "".join(f'<li><a href="{_html.escape(path, quote=True)}">{_html.escape(label)}</a></li>'
                    for label, path in links.items())
    return f'<h2 id="files">Files</h2><ul class="files">{items}</ul>'


def page_head(title: str, kind: str = "report") -> list[str]:
    """The page's opening: doctype, inline CSS, the title and when it was generated."""
    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{_html.escape(title)}</title><style>{CSS}</style></head><body>",
            f"<h1>{_html.escape(title)}</h1>", f'<p class="meta">cluster_sim {kind}, generated {when}</p>']


def render_html(
    title: str,
    *,
    summary: Mapping[str, Any],
    tables: Mapping[str, pd.DataFrame],
    figures: Mapping[str, Figure | bytes],
    notes: Sequence[str] = (),
    description: str = "",
    config_yaml: str | None = None,
    headline: Sequence[str] = (),
    links: Links | None = None,
    index: MetricIndex | None = None,
) -> str:
    """The report page as one HTML string.

    Parameters
    ----------
    title : str
        Page title (the experiment name).
    summary : mapping
        Flat metrics (``summary.json``); shares shown as %, ``*_s`` as durations. Shown in full,
        collapsed, with a ``sources`` mapping (key group -> producer) as its own table.
    tables : mapping caption -> DataFrame
        Tables after the figures (per service, policies, step breakdown, scaling points, ...);
        empty ones are left out. Column names that are summary keys link to their definitions.
    figures : mapping caption -> Figure or PNG bytes
        Embedded as base64 PNGs.
    notes : sequence of str
        Model notes and warnings.
    config_yaml : str, optional
        The resolved configuration, shown collapsed at the end.
    headline : sequence of str
        Keys shown first as KPI cards (``HEADLINE_KEYS``), grouped by engine (:func:`kpi_groups`).
    links : mapping label -> relative path, optional
        The run's files (Parquet tables, ``trace.json``, ...).
    index : MetricIndex, optional
        Metric definitions (default: the shipped index of ``docs/metrics.md``).
    """
    refs = MetricRefs(index if index is not None else default_index())
    parts = page_head(title)
    if description:
        parts.append(f"<p>{_html.escape(description)}</p>")
    parts.append(_kpis(summary, headline, refs))
    if figures:
        parts.append('<section id="figures"><h2>Figures</h2><div class="figs">')
        parts += [img_html(fig, caption) for caption, fig in figures.items()]
        parts.append("</div></section>")
    shown = [(c, df) for c, df in tables.items() if df is not None and len(df)]
    if shown:
        parts.append('<section id="tables">')
        for caption, df in shown:
            key_of = df.attrs.get("metric_key")
            parts += [f"<h2>{_html.escape(caption)}</h2>", table_html(df, refs, key_of=key_of)]
        parts.append("</section>")
    if links:
        parts.append(_files(links))
    if notes:
        parts.append("<h2>Notes</h2><ul class=\"notes\">")
        parts += [f"<li>{_html.escape(n)}</li>" for n in notes]
        parts.append("</ul>")
    n_keys = sum(1 for v in summary.values() if not isinstance(v, Mapping))
    parts += [f'<details id="all-keys"><summary>All {n_keys} summary keys</summary>', _summary_table(summary, refs)]
    if isinstance(summary.get("sources"), Mapping) and summary["sources"]:
        parts += ["<h2>Where each number comes from</h2>", _sources_table(summary["sources"])]
    parts.append("</details>")
    if config_yaml:
        parts += ['<details id="config"><summary>Configuration (resolved)</summary>',
                  f"<pre>{_html.escape(config_yaml)}</pre></details>"]
    parts.append(refs.definitions())
    parts.append("</body></html>")
    return "\n".join(p for p in parts if p)


def write_html(path: str | Path, page: str) -> Path:
    """Write ``page`` (from :func:`render_html`) as UTF-8."""
    p = Path(path)
    p.write_text(page, encoding="utf-8")
    return p
