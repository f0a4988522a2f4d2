"""The soak benchmark's invariant checks (benchmarks/faults_soak.py) on a small run: they hold on
a real run with failures and elastic jobs, and each of them fails on a broken state."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.faults_soak import check_invariants
from cluster_sim.config import load_config
from cluster_sim.experiment.build import build_simulation
from cluster_sim.metrics import result_from_record

SMALL = {
    "name": "soak-small", "seed": 4, "duration": "3d",
    "cluster": {"topology": {"builder": "node_groups", "nodes_per_leaf": 2, "groups": [["h100-sxm", 8, 8]]}},
    "training": {"generator": {"kind": "industry_mix", "jobs_per_hour": 2, "elastic_fraction": 1.0}},
    "failures": {
        "classes": [{"name": "host", "unit": "node", "rate_per_1000_node_days": 200, "repair": "12h"},
                    {"name": "gpu", "unit": "card", "mtbf": "2000h", "distribution": "weibull",
                     "shape": 0.8, "repair": "6h"}],
        "technicians": 1, "spare_nodes": 1, "restart_delay": "auto",
        "checkpoint": {"interval": "1h", "cost": "1min"}},
}


@pytest.fixture(scope="module")
def ran():
    sim = build_simulation(load_config(SMALL))
    sim.run()
    return sim, result_from_record(sim.collect()).summary


def test_invariants_hold_on_a_run(ran):
    sim, s = ran
    out = check_invariants(sim, s)
    assert out["card_hours_expected"] == pytest.approx(64 * 3 * 24)
    assert s["training.restarts"] > 0 and 0 < out["lost_over_bound_max"] <= 1.0


def test_each_invariant_can_fail(ran):
    sim, s = ran
    with pytest.raises(AssertionError, match="card-hours"):
        check_invariants(sim, {**s, "failures.card_hours.up": s["failures.card_hours.up"] + 1.0})
    eng = sim.training
    i = next(iter(eng.lost_fail_card_s))
    keep = eng.lost_fail_card_s[i]
    eng.lost_fail_card_s[i] = 1e15
    try:
        with pytest.raises(AssertionError, match="lost"):
            check_invariants(sim, s)
    finally:
        eng.lost_fail_card_s[i] = keep
    st = sim.state
    st.alloc[10**6] = (np.array([0]), 1000)   # a fake job row holding a card marked down
    was = bool(st.down[0])
    st.down[0] = True
    eng.num.append(1)
    try:
        with pytest.raises(AssertionError, match="down card"):
            check_invariants(sim, s)
    finally:
        del st.alloc[10**6]
        st.down[0] = was
        eng.num.pop()
