"""Invariants of arrival processes and request tables (hypothesis)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cluster_sim.workload import arrivals
from cluster_sim.workload.requests import RequestTable

rates = st.floats(0.0, 200.0)
horizons = st.floats(0.0, 200.0)
seeds = st.integers(0, 2**32 - 1)


def well_formed(t: np.ndarray, horizon: float) -> bool:
    return (t.dtype == np.float64 and t.ndim == 1 and bool((np.diff(t) >= 0).all())
            and (len(t) == 0 or (t[0] >= 0.0 and t[-1] < horizon)))


@settings(max_examples=50, deadline=10_000)
@given(rate=rates, horizon=horizons, seed=seeds)
def test_poisson_sorted_in_range_deterministic(rate, horizon, seed):
    t = arrivals.poisson(rate, horizon, rng=seed)
    assert well_formed(t, horizon)
    assert np.array_equal(t, arrivals.poisson(rate, horizon, rng=seed))


@settings(max_examples=50, deadline=10_000)
@given(rate=st.floats(0.01, 200.0), cv=st.floats(0.1, 20.0), horizon=horizons, seed=seeds)
def test_gamma_sorted_in_range_deterministic(rate, cv, horizon, seed):
    t = arrivals.gamma(rate, cv, horizon, rng=seed)
    assert well_formed(t, horizon)
    assert np.array_equal(t, arrivals.gamma(rate, cv, horizon, rng=seed))


@settings(max_examples=50, deadline=10_000)
@given(rate=rates, horizon=horizons, ratio=st.floats(1.0, 20.0), period=st.floats(1.0, 1e5),
       phase=st.floats(-1e5, 1e5), seed=seeds)
def test_diurnal_sorted_in_range_deterministic(rate, horizon, ratio, period, phase, seed):
    t = arrivals.diurnal(rate, horizon, rng=seed, peak_to_trough=ratio, period_s=period, phase_s=phase)
    assert well_formed(t, horizon)
    assert np.array_equal(t, arrivals.diurnal(rate, horizon, rng=seed, peak_to_trough=ratio,
                                              period_s=period, phase_s=phase))


@settings(max_examples=50, deadline=10_000)
@given(rate=st.floats(0.01, 0.5), seed=seeds, table=st.lists(st.floats(0.0, 10.0), min_size=1, max_size=48)
       .filter(lambda x: sum(x) > 0.1))
def test_diurnal_hourly_zero_slots_get_nothing(rate, seed, table):
    t = arrivals.diurnal(rate, 86400.0, rng=seed, hourly=table)
    assert well_formed(t, 86400.0)
    slot = (t * len(table) / 86400.0).astype(int)
    zero = np.flatnonzero(np.asarray(table) == 0.0)
    assert not np.isin(slot, zero).any()


@settings(max_examples=50, deadline=10_000)
@given(n=st.integers(0, 60), seed=seeds, data=st.data())
def test_request_table_take_keeps_rows_together(n, seed, data):
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 5, n)
    offsets = np.r_[0, np.cumsum(counts)]
    hashes = rng.integers(0, 1000, offsets[-1])
    t = RequestTable.from_arrays(rng.uniform(0, 100, n), rng.integers(0, 1000, n), rng.integers(0, 50, n),
                                 block_hashes=hashes, block_offsets=offsets)
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    for sub, idx in ((t[mask], np.flatnonzero(mask)), (t.sorted(), np.argsort(t.arrival_s, kind="stable"))):
        assert len(sub) == len(idx)
        for j, i in enumerate(idx):
            assert sub.arrival_s[j] == t.arrival_s[i] and sub.prompt_tokens[j] == t.prompt_tokens[i]
            assert np.array_equal(sub.blocks(j), t.blocks(i))
    both = RequestTable.concat([t[mask], t[~mask]])
    assert len(both) == n and np.array_equal(both.arrival_s, np.sort(t.arrival_s))
    assert both.block_counts.sum() == counts.sum()
