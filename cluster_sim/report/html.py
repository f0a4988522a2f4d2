"""A self-contained ``report.html``: inline CSS, figures embedded as base64 PNGs, tables, notes.

One file that opens offline in any browser and can be mailed around; no scripts, no external
assets.

>>> page = render_html("demo", summary={"training.mfu": 0.41}, tables={}, figures={})
>>> "<title>demo</title>" in page and "41.0%" in page
True
"""

from __future__ import annotations

import base64
import datetime as _dt
import html as _html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from .plots import png_bytes

__all__ = ["format_value", "render_html", "write_html"]

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1150px;
     color:#222;padding:0 1em;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em} h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #ddd}
.meta{color:#666;font-size:.9em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:right}
th{background:#f3f5f7} td:first-child,th:first-child{text-align:left}
tr:nth-child(even) td{background:#fafafa}
figure{margin:1em 0} figure img{max-width:100%;border:1px solid #eee}
figcaption{color:#555;font-size:.9em}
ul.notes li{margin:.2em 0}
"""

# Names shown as percentages; ``*_s`` names (not ``*_per_s``) are shown as durations.
_PERCENT_HINTS = ("mfu", "hfu", "linear_speedup", "utilization", "attainment", "fraction", "share")
_PERCENT_NAMES = ("allocated", "busy")  # utilization.allocated, utilization.busy
_STATS = ("p50", "p90", "p95", "p99", "mean", "max", "min", "std")


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


def _table(df: pd.DataFrame, formats: Mapping[str, Any] | None = None) -> str:
    cols = [str(c) for c in df.columns]
    head = "".join(f"<th>{_html.escape(c)}</th>" for c in cols)
    rows = []
    for _, r in df.iterrows():
        cells = []
        for c, v in zip(cols, r.tolist(), strict=True):
            fmt = (formats or {}).get(c)
            text = fmt(v) if callable(fmt) else format_value(c, v)
            cells.append(f"<td>{_html.escape(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _summary_table(summary: Mapping[str, Any]) -> str:
    rows = "".join(
        f"<tr><td>{_html.escape(k)}</td><td>{_html.escape(format_value(k, v))}</td></tr>"
        for k, v in summary.items() if not isinstance(v, Mapping)
    )
    return f"<table><thead><tr><th>metric</th><th>value</th></tr></thead><tbody>{rows}</tbody></table>"


def _sources_table(sources: Mapping[str, Any]) -> str:
    rows = "".join(f"<tr><td>{_html.escape(str(k))}</td><td>{_html.escape(str(v))}</td></tr>"
                   for k, v in sources.items())
    return f"<table><thead><tr><th>keys</th><th>produced by</th></tr></thead><tbody>{rows}</tbody></table>"


def _img(fig: Figure | bytes, caption: str) -> str:
    data = fig if isinstance(fig, bytes) else png_bytes(fig)
    b64 = base64.b64encode(data).decode("ascii")
    cap = _html.escape(caption)
    return (f'<figure><img alt="{cap}" src="data:image/png;base64,{b64}">'
            f"<figcaption>{cap}</figcaption></figure>")


def render_html(
    title: str,
    *,
    summary: Mapping[str, Any],
    tables: Mapping[str, pd.DataFrame],
    figures: Mapping[str, Figure | bytes],
    notes: Sequence[str] = (),
    description: str = "",
    config_yaml: str | None = None,
) -> str:
    """The report page as one HTML string.

    Parameters
    ----------
    title : str
        Page title (the experiment name).
    summary : mapping
        Flat headline metrics (``summary.json``); shares shown as %, ``*_s`` as durations. A
        ``sources`` mapping (key group -> producer) is shown as its own table.
    tables : mapping caption -> DataFrame
        Extra tables (step breakdown per job, scaling points, ...).
    figures : mapping caption -> Figure or PNG bytes
        Embedded as base64 PNGs.
    notes : sequence of str
        Model notes and warnings.
    config_yaml : str, optional
        The resolved configuration, shown at the end.
    """
    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_html.escape(title)}</h1>",
        f'<p class="meta">cluster_sim report, generated {when}</p>',
    ]
    if description:
        parts.append(f"<p>{_html.escape(description)}</p>")
    parts += ["<h2>Summary</h2>", _summary_table(summary)]
    if isinstance(summary.get("sources"), Mapping) and summary["sources"]:
        parts += ["<h2>Where each number comes from</h2>", _sources_table(summary["sources"])]
    for caption, df in tables.items():
        if df is not None and len(df):
            parts += [f"<h2>{_html.escape(caption)}</h2>", _table(df)]
    if figures:
        parts.append("<h2>Figures</h2>")
        parts += [_img(fig, caption) for caption, fig in figures.items()]
    if notes:
        parts.append("<h2>Notes</h2><ul class=\"notes\">")
        parts += [f"<li>{_html.escape(n)}</li>" for n in notes]
        parts.append("</ul>")
    if config_yaml:
        parts += ["<h2>Configuration (resolved)</h2>", f"<pre>{_html.escape(config_yaml)}</pre>"]
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html(path: str | Path, page: str) -> Path:
    """Write ``page`` (from :func:`render_html`) as UTF-8."""
    p = Path(path)
    p.write_text(page, encoding="utf-8")
    return p
