"""Arrival processes, request tables and length distributions."""

from __future__ import annotations

import time

import numpy as np
import pytest

from cluster_sim.errors import ConfigError
from cluster_sim.workload import arrivals
from cluster_sim.workload.lengths import (
    LENGTHS,
    LengthDist,
    length_dist,
    sample_lengths,
    synthetic_requests,
)
from cluster_sim.workload.requests import RequestTable


def cv(t: np.ndarray) -> float:
    g = np.diff(t)
    return float(g.std() / g.mean())


# ---- arrivals ----------------------------------------------------------------------------------
def test_poisson_rate_and_cv():
    t = arrivals.poisson(50.0, 4000.0, rng=3)
    assert len(t) == pytest.approx(200_000, rel=0.01)  # sd of the count is 447 = 0.22 %
    assert cv(t) == pytest.approx(1.0, abs=0.01)
    assert t.dtype == np.float64 and (np.diff(t) >= 0).all() and t[0] >= 0 and t[-1] < 4000.0


@pytest.mark.parametrize("c", [0.5, 1.0, 3.0, 8.0])
def test_gamma_cv_and_rate(c):
    t = arrivals.gamma(100.0, c, 2000.0, rng=5)
    assert len(t) / 2000.0 == pytest.approx(100.0, rel=0.03 * max(1.0, c))
    assert cv(t) == pytest.approx(c, rel=0.05)
    assert (np.diff(t) >= 0).all() and t[-1] < 2000.0


def test_diurnal_peak_to_trough_and_mean():
    day = 86400.0
    t = arrivals.diurnal(5.0, 4 * day, rng=11, peak_to_trough=4.0)
    assert len(t) / (4 * day) == pytest.approx(5.0, rel=0.01)  # whole periods keep the mean
    hours = np.bincount(((t % day) // 3600).astype(int), minlength=24)
    # trough at t = 0 (hours 23 and 0 around it), peak at noon; integrate the sinusoid over one hour
    # mean relative rate over hour h of 1 - a cos(2 pi t / 24 h), a = (4 - 1)/(4 + 1)
    a, h = 3.0 / 5.0, np.arange(24)
    shape = 1 - a * 12 / np.pi * (np.sin(np.pi * (h + 1) / 12) - np.sin(np.pi * h / 12))
    want = shape * 5.0 * 3600 * 4
    assert hours == pytest.approx(want, rel=0.04)
    assert (hours[11] + hours[12]) / (hours[23] + hours[0]) == pytest.approx(
        (want[11] + want[12]) / (want[23] + want[0]), rel=0.05)


def test_diurnal_hourly_table():
    table = [1.0] * 8 + [4.0] * 8 + [1.0] * 8
    t = arrivals.diurnal(2.0, 86400.0 * 3, rng=2, hourly=table)
    hours = np.bincount(((t % 86400) // 3600).astype(int), minlength=24)
    assert hours[8:16].mean() / hours[:8].mean() == pytest.approx(4.0, rel=0.05)
    assert len(t) / (86400 * 3) == pytest.approx(2.0, rel=0.02)


def test_determinism_and_independence_of_seed():
    for fn, args in ((arrivals.poisson, (5.0, 1000.0)), (arrivals.diurnal, (5.0, 1000.0))):
        assert np.array_equal(fn(*args, rng=7), fn(*args, rng=7))
        assert not np.array_equal(fn(*args, rng=7), fn(*args, rng=8))
    assert np.array_equal(arrivals.gamma(5.0, 2.0, 1000.0, rng=7), arrivals.gamma(5.0, 2.0, 1000.0, rng=7))
    g = np.random.default_rng(1)
    a = arrivals.poisson(5.0, 100.0, g)
    b = arrivals.poisson(5.0, 100.0, g)  # a Generator is used as is: the stream advances
    assert not np.array_equal(a, b)


def test_one_million_arrivals_fast():
    for fn, args in ((arrivals.poisson, (1000.0, 1000.0)), (arrivals.gamma, (1000.0, 2.0, 1000.0)),
                     (arrivals.diurnal, (2000.0, 1000.0))):
        t0 = time.perf_counter()
        t = fn(*args, rng=0)
        assert time.perf_counter() - t0 < 1.0
        assert len(t) > 900_000


def test_bad_parameters():
    with pytest.raises(ConfigError, match="rate_per_s"):
        arrivals.poisson(-1.0, 10.0)
    with pytest.raises(ConfigError, match="cv"):
        arrivals.gamma(1.0, 0.0, 10.0)
    with pytest.raises(ConfigError, match="peak_to_trough"):
        arrivals.diurnal(1.0, 10.0, peak_to_trough=0.5)
    with pytest.raises(ConfigError, match="hourly"):
        arrivals.diurnal(1.0, 10.0, hourly=[0.0, 0.0])
    with pytest.raises(ConfigError, match="known: diurnal, gamma, poisson"):
        arrivals.generate("weibull", 1.0, 10.0)
    assert len(arrivals.poisson(0.0, 10.0)) == 0 and len(arrivals.gamma(1.0, 1.0, 0.0)) == 0


def test_generate_dispatch():
    assert np.array_equal(arrivals.generate("gamma", 3.0, 50.0, rng=1, cv=2.0), arrivals.gamma(3.0, 2.0, 50.0, rng=1))
    assert np.array_equal(arrivals.generate("poisson", 3.0, 50.0, rng=1), arrivals.poisson(3.0, 50.0, rng=1))


# ---- RequestTable ------------------------------------------------------------------------------
def table_with_blocks() -> RequestTable:
    return RequestTable.from_arrays([3.0, 1.0, 2.0], [1000, 10, 600], [5, 6, 7],
                                    block_hashes=[1, 2, 3, 9, 1, 4], block_offsets=[0, 2, 3, 6],
                                    service=[0, 1, 0])


def test_request_table_select_sort_blocks():
    t = table_with_blocks()
    s = t.sorted()
    assert s.arrival_s.tolist() == [1.0, 2.0, 3.0]
    assert s.blocks(0).tolist() == [3] and s.blocks(1).tolist() == [9, 1, 4] and s.blocks(2).tolist() == [1, 2]
    assert s.service.tolist() == [1, 0, 0]
    m = t[t.prompt_tokens > 100]
    assert len(m) == 2 and m.blocks(1).tolist() == [9, 1, 4]
    assert t[1:].prompt_tokens.tolist() == [10, 600]
    h = s.head(2.5)
    assert len(h) == 2 and h.block_offsets.tolist() == [0, 1, 4]
    c = RequestTable.concat([t, t.shifted(10.0)])
    assert len(c) == 6 and c.arrival_s.tolist() == [1, 2, 3, 11, 12, 13]
    assert c.blocks(5).tolist() == [1, 2] and c.service is not None
    assert t.block_counts.tolist() == [2, 1, 3]


def test_request_table_scaling_and_sampling():
    t = RequestTable.from_arrays(np.arange(100.0), np.full(100, 5), np.full(100, 6))
    assert t.scaled(rate_scale=4.0).arrival_s[-1] == pytest.approx(99 / 4)
    assert t.scaled(time_scale=2.0).arrival_s[-1] == pytest.approx(198.0)
    s = t.sample(10, rng=1)
    assert len(s) == 10 and (np.diff(s.arrival_s) > 0).all()
    assert np.array_equal(s.arrival_s, t.sample(10, rng=1).arrival_s)
    assert len(t.sample(fraction=0.25, rng=2)) == 25
    with pytest.raises(ConfigError):
        t.sample(1000)
    with pytest.raises(ConfigError):
        t.scaled(rate_scale=0.0)


def test_request_table_validation():
    with pytest.raises(ConfigError, match=r"prompt_tokens\[1\]: must be >= 0"):
        RequestTable.from_arrays([0, 1], [5, -1], [1, 1])
    with pytest.raises(ConfigError, match=r"arrival_s\[0\]: NaN"):
        RequestTable.from_arrays([np.nan], [5], [1])
    with pytest.raises(ConfigError, match=r"output_tokens\[0\]: NaN"):
        RequestTable.from_arrays([0.0], [5], [np.nan])
    with pytest.raises(ConfigError, match="not an integer"):
        RequestTable.from_arrays([0.0], [5.5], [1])
    with pytest.raises(ConfigError, match="2 values for 1 arrivals"):
        RequestTable.from_arrays([0.0], [5, 6], [1])
    with pytest.raises(ConfigError, match="block_offsets"):
        RequestTable.from_arrays([0.0], [5], [1], block_hashes=[1, 2], block_offsets=[0, 1])


def test_million_requests_are_small():
    n = 1_000_000
    t = RequestTable.from_arrays(np.arange(n, dtype=np.float64), np.ones(n), np.ones(n), service=0)
    assert t.nbytes == 18 * n  # 8 + 4 + 4 + 2 bytes per request
    assert t.arrival_s.dtype == np.float64 and t.prompt_tokens.dtype == np.int32
    assert t.service.dtype == np.int16


# ---- lengths -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name,prompt_mean,output_mean", [
    ("azure_code", 2047.8, 27.88), ("azure_conv", 1154.7, 211.1), ("mooncake", 12035.1, 342.6)])
def test_sampled_lengths_match_trace_means(name, prompt_mean, output_mean):
    p, o = sample_lengths(name, 200_000, rng=4)
    assert p.dtype == np.int32 and p.min() >= 1 and o.min() >= 1
    assert p.mean() == pytest.approx(prompt_mean, rel=0.03)
    assert o.mean() == pytest.approx(output_mean, rel=0.05)
    assert LENGTHS[name].mean_prompt_tokens == pytest.approx(prompt_mean, rel=0.03)


def test_lognormal_and_fixed_lengths():
    p, o = sample_lengths("azure_conv_lognormal", 100_000, rng=1)
    assert np.median(p) == pytest.approx(np.exp(6.6333), rel=0.03)
    assert p.max() <= 14050 and o.max() <= 1000
    p, o = sample_lengths("fixed:100:7", 3)
    assert p.tolist() == [100] * 3 and o.tolist() == [7] * 3
    with pytest.raises(ConfigError, match="known"):
        length_dist("sharegpt")
    with pytest.raises(ConfigError, match="fixed"):
        length_dist("fixed:0:1")
    with pytest.raises(ConfigError):
        LengthDist("x", "empirical", (1.0, 2.0), (1.0, 2.0))


def test_million_synthetic_requests_fast():
    t0 = time.perf_counter()
    t = synthetic_requests(arrivals={"kind": "gamma", "rate_per_s": 1000.0, "cv": 4.0}, lengths="mooncake",
                           n=1_000_000, rng=0)
    assert time.perf_counter() - t0 < 2.0
    assert len(t) == 1_000_000 and t.nbytes == 16_000_000


def test_synthetic_requests():
    t = synthetic_requests(arrivals={"kind": "gamma", "rate_per_s": 20.0, "cv": 2.0}, lengths="azure_code",
                           horizon_s=100.0, rng=3)
    assert 1000 < len(t) < 3000 and t.arrival_s[-1] < 100.0
    t2 = synthetic_requests(arrivals={"kind": "gamma", "rate_per_s": 20.0, "cv": 2.0}, lengths="azure_code",
                            horizon_s=100.0, rng=3)
    assert np.array_equal(t.prompt_tokens, t2.prompt_tokens) and np.array_equal(t.arrival_s, t2.arrival_s)
    n = synthetic_requests(arrivals="poisson", rate_per_s=10.0, n=500, rng=1, service=2)
    assert len(n) == 500 and n.service.tolist() == [2] * 500
    given = synthetic_requests(arrivals=np.array([3.0, 1.0, 2.0]), lengths="fixed:10:2", n=2)
    assert given.arrival_s.tolist() == [1.0, 2.0]
    with pytest.raises(ConfigError, match="rate"):
        synthetic_requests(arrivals="poisson", n=5)
    with pytest.raises(ConfigError, match="n or horizon_s"):
        synthetic_requests(arrivals="poisson", rate_per_s=1.0)
