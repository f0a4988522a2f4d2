"""``Result._repr_html_``: what a notebook cell ending with a Result shows (experiment/result_html.py)."""

from __future__ import annotations

import base64
import re

import pytest
from IPython.core.formatters import DisplayFormatter

import cluster_sim as cs
from cluster_sim.experiment.result_html import MAIN_FIGURES, MAX_FIGURES, result_html
from cluster_sim.report.html import format_value

_IMG = re.compile(r'<img alt="([^"]*)" [^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


@pytest.fixture(scope="module")
def train() -> cs.Result:
    return cs.simulate(cs.load_config("train_llama3_70b"))


@pytest.fixture(scope="module")
def mixed() -> cs.Result:
    """Training and serving: more figures than a cell shows."""
    return cs.simulate(cs.load_config("plan_supernode_workload", overrides={"duration": "20s"}))


def _kpi_value(page: str, key: str) -> str:
    m = re.search(rf"<code>{re.escape(key)}</code></td><td[^>]*>([^<]*)</td>", page)
    assert m is not None, f"{key} not in the KPI table"
    return m.group(1)


def test_kpis_and_the_breakdown_figure(train):
    page = train._repr_html_()
    assert page == result_html(train)
    assert _kpi_value(page, "training.mfu") == "51.2%" == format_value("training.mfu", train.summary["training.mfu"])
    assert _kpi_value(page, "training.days_to_train") == "163.2 d"
    assert "sim.wall_s" not in page.split("</table>")[0]          # wall clock is no KPI
    imgs = _IMG.findall(page)
    # a single job with tokens is a cluster of one: its breakdown, then the engine's figures
    assert train.plot.available() == ["breakdown", "utilization", "queue_length", "jct_cdf"]
    assert [alt for alt, _ in imgs] == ["Step-time breakdown per training job", "Cluster utilization over time",
                                        "Job completion time CDF"]
    png = base64.b64decode(imgs[0][1])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5_000
    assert "http" not in page and "<script" not in page and "<link" not in page   # self-contained


def test_main_figures_first_and_capped(mixed):
    have = mixed.plot.available()
    expected = [n for n in MAIN_FIGURES if n in have][:MAX_FIGURES]
    assert len(have) > MAX_FIGURES and expected == ["breakdown", "utilization", "latency_cdf"]
    page = mixed._repr_html_()
    shown = re.findall(r"<code>res\.plot\.(\w+)\(\)</code>\)</figcaption>", page)
    assert shown == expected and len(_IMG.findall(page)) == MAX_FIGURES
    for name in set(have) - set(expected):                      # the rest is named, not drawn
        assert f"<code>res.plot.{name}()</code>" in page.split("</figure>")[-1]
    assert _kpi_value(page, "inference.slo_attainment") == format_value(
        "inference.slo_attainment", mixed.summary["inference.slo_attainment"])
    assert f"{len(mixed.notes)} note(s)" in page
    assert _IMG.findall(result_html(mixed, max_figures=0)) == []
    assert len(_IMG.findall(result_html(mixed, max_figures=1))) == 1


def test_text_is_escaped():
    res = cs.simulate(cs.load_config("train_llama3_70b", overrides={"description": "<script>x()</script> & co"}))
    page = res._repr_html_()
    assert "<script>" not in page and "&lt;script&gt;x()&lt;/script&gt; &amp; co" in page


def test_ipython_displays_it_as_html(train):
    data, _ = DisplayFormatter().format(train)
    assert data["text/html"] == train._repr_html_()
    assert data["text/plain"].startswith("Result(name='llama3-70b-pretrain'")
