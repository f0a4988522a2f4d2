"""Report figures and the HTML page: real content, labels, normalisation, errors."""

from __future__ import annotations

import base64

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from cluster_sim.errors import ClusterSimError
from cluster_sim.report import html, plots


def _png_ok(fig: Figure) -> bytes:
    data = plots.png_bytes(fig)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return data


def test_breakdown_bars_add_up_to_the_step():
    b = {"a": {"compute": 6.0, "tp_comm": 2.0, "pp_bubble": 1.0, "dp_comm": 1.0},
         "b": {"compute": 3.0, "optimizer": 0.5}}
    fig = plots.breakdown(b, mfu={"a": 0.41, "b": 0.5})
    ax = fig.axes[0]
    widths: dict[float, float] = {}
    for patch in ax.patches:  # each bar segment: y centre -> summed width
        y = round(patch.get_y() + patch.get_height() / 2, 6)
        widths[y] = widths.get(y, 0.0) + patch.get_width()
    assert sorted(widths.values()) == pytest.approx([3.5, 10.0])
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0] == "compute (GEMM)" and "optimizer" in labels and len(labels) == 5
    texts = " ".join(t.get_text() for t in ax.texts)
    assert "MFU 41.0%" in texts and "60%" in texts  # compute share of job a
    assert ax.get_xlabel() == "seconds per optimizer step"
    _png_ok(fig)


def test_breakdown_without_jobs_is_an_error():
    with pytest.raises(ClusterSimError, match="no training jobs"):
        plots.breakdown({})


def test_scaling_one_line_per_topology_and_ideal():
    df = pd.DataFrame({"cards": [8, 64, 512], "linear_speedup": [1.0, 0.95, 0.9], "mfu": [0.5, 0.48, 0.45]})
    fig = plots.scaling({"rail": df, "ethernet": df.assign(linear_speedup=[1.0, 0.8, 0.6])})
    ax1, ax2 = fig.axes
    assert [ln.get_label() for ln in ax1.get_lines()][:2] == ["rail", "ethernet"]
    assert ax1.get_xscale() == "log"
    assert ax1.get_ylim()[0] <= 0.6 and ax1.get_ylim()[1] >= 1.0
    assert "linear speedup" in ax1.get_ylabel() and "MFU" in ax2.get_ylabel()
    assert [int(t) for t in ax1.get_xticks()] == [8, 64, 512]
    _png_ok(fig)
    with pytest.raises(ClusterSimError, match="missing column"):
        plots.scaling({"x": df.drop(columns="mfu")})


def test_utilization_is_normalised_by_capacity():
    tl = pd.DataFrame({"time_s": [0.0, 3600.0, 7200.0, 14400.0], "allocated_cards": [0, 64, 128, 32],
                       "busy_cards": [0, 32, 100, 16], "available_cards": [128, 128, 128, 128]})
    fig = plots.utilization(tl)
    ax = fig.axes[0]
    alloc = ax.get_lines()[0].get_ydata()
    assert max(alloc) == pytest.approx(1.0) and alloc[1] == pytest.approx(0.5)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["allocated", "busy"]
    assert ax.get_xlabel() == "simulated time (hours)"
    with pytest.raises(ClusterSimError, match="no data"):
        plots.utilization(pd.DataFrame())


def test_cdfs_end_at_one_and_show_slo():
    rng = np.random.default_rng(0)
    req = pd.DataFrame({"ttft_s": rng.exponential(0.2, 500), "tpot_s": rng.exponential(0.03, 500),
                        "e2e_s": rng.exponential(5.0, 500), "service": ["a", "b"] * 250})
    fig = plots.latency_cdf(req, slo={"ttft": 0.5, "tpot": 0.05}, by="service")
    assert len(fig.axes) == 3
    first = fig.axes[0].get_lines()[0]
    assert first.get_ydata()[-1] == pytest.approx(1.0)
    assert "SLO 500ms" in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    jobs = pd.DataFrame({"submit_s": [0.0, 10.0, 20.0], "finish_s": [100.0, 1000.0, 50.0]})
    jf = plots.jct_cdf(jobs)
    line = jf.axes[0].get_lines()[0]
    assert list(line.get_xdata()) == [30.0, 100.0, 990.0] and line.get_ydata()[-1] == pytest.approx(1.0)
    with pytest.raises(ClusterSimError):
        plots.jct_cdf(pd.DataFrame({"x": [1]}))


def test_goodput_queue_and_kv_figures():
    pts = pd.DataFrame({"rate_rps": [1, 2, 4], "goodput_rps": [1, 1.9, 2.5], "slo_attainment": [1, 0.95, 0.6]})
    assert len(plots.goodput_vs_rate(pts).axes) == 2
    tl = pd.DataFrame({"time_s": [0, 60, 120], "queued_jobs": [0, 5, 2], "kv_occupancy.decode": [0.1, 0.9, 0.5]})
    assert plots.queue_length(tl).axes[0].get_lines()[0].get_ydata().max() == 5
    kv = plots.kv_occupancy(tl)
    assert [t.get_text() for t in kv.axes[0].get_legend().get_texts()] == ["decode"]


def test_format_value():
    f = html.format_value
    assert f("training.mfu", 0.4123) == "41.2%"
    assert f("utilization.busy", 0.5) == "50.0%"
    assert f("inference.ttft_s.p99", 0.25) == "250 ms"
    assert f("training.jct_s.p50", 5 * 3600) == "5 h"
    assert f("training.tokens_per_s", 1.5e6) == "1,500,000"  # a rate, not a duration
    assert f("cluster.cards", 1024) == "1,024"
    assert f("x", None) == "-" and f("name", "demo") == "demo"


def test_html_is_self_contained_and_escaped():
    fig = plots.breakdown({"a": {"compute": 1.0}})
    page = html.render_html("run <1>", summary={"training.mfu": 0.5, "note": "<b>"},
                            tables={"T": pd.DataFrame({"job": ["x"], "step_time_s": [2.0]})},
                            figures={"Breakdown": fig}, notes=["a & b"], config_yaml="a: 1")
    assert page.startswith("<!DOCTYPE html>") and "<title>run &lt;1&gt;</title>" in page
    assert "&lt;b&gt;" in page and "a &amp; b" in page and "<b>" not in page
    assert "<script" not in page and "http" not in page.split("<body>")[1]  # no external assets
    b64 = page.split("data:image/png;base64,")[1].split('"')[0]
    assert base64.b64decode(b64)[:4] == b"\x89PNG"
    assert "<td>2 s</td>" in page and "50.0%" in page
