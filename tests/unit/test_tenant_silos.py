"""Per-tenant training silos under ``static_partition`` (``tenant_cards``): which cards each silo
gets (whole domains first, after the inference partition), parameter errors, and the engine's
silos (one training engine per silo on one clock and ledger): no job ever holds a card outside
its tenant's silo, a job larger than its silo is rejected at submit, and one silo of every card
runs exactly like no silo."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cluster_sim.engine.cluster.failures import FailureModel
from cluster_sim.engine.cluster.silos import Silo, TrainingSilos
from cluster_sim.engine.cluster.state import layout_from_node_groups
from cluster_sim.engine.pool.ledger import TRAINING
from cluster_sim.engine.simulation import Simulation
from cluster_sim.errors import ConfigError
from cluster_sim.policies import registry
from cluster_sim.policies.pool.partition import PoolView, StaticPartition
from cluster_sim.workload.generators import uniform_jobs
from cluster_sim.workload.jobs import JobTable

ONE = PoolView(("h100-sxm",), np.zeros(32, np.int64), np.repeat(np.arange(4), 8), {"h100-sxm": 4})
# two types, interleaved domains: h100 in domains 0 and 2, a100 in 1 and 3
TWO = PoolView(("h100-sxm", "a100-80gb"), np.repeat([0, 1, 0, 1], 8), np.repeat(np.arange(4), 8), {})


def test_silos_follow_the_inference_partition_in_domain_order():
    plan = StaticPartition(tenant_cards={"a": 12, "b": 8}).partition(ONE)
    assert plan.inference_cards.tolist() == [0, 1, 2, 3]
    assert plan.tenant_cards["a"].tolist() == list(range(4, 16))   # the rest of domain 0, all of 1
    assert plan.tenant_cards["b"].tolist() == list(range(16, 24))  # domain 2, whole
    assert plan.rest_cards is not None and plan.rest_cards.tolist() == list(range(24, 32))
    assert plan.tenant_by_type == {"a": {"h100-sxm": 12}, "b": {"h100-sxm": 8}}


def test_silos_per_type_take_that_types_domains():
    plan = StaticPartition(inference_cards={"h100-sxm": 0},
                           tenant_cards={"a": {"a100-80gb": 8}, "b": {"h100-sxm": 4, "a100-80gb": 4}}
                           ).partition(TWO)
    assert plan.tenant_cards["a"].tolist() == list(range(8, 16))             # a100 domain 1
    assert plan.tenant_cards["b"].tolist() == [0, 1, 2, 3, 24, 25, 26, 27]   # h100 dom 0, a100 dom 3
    assert plan.rest_cards is not None and plan.rest_cards.size == 32 - 16
    assert not np.intersect1d(plan.tenant_cards["a"], plan.tenant_cards["b"]).size


def test_no_tenant_cards_leaves_the_plan_as_before():
    plan = StaticPartition().partition(ONE)
    assert plan.tenant_cards == {} and plan.rest_cards is None


@pytest.mark.parametrize("params, view, message", [
    ({"tenant_cards": {"a": 29}}, ONE,
     "tenant_cards.a.h100-sxm: asks for 29 cards; 28 h100-sxm are left for training"),
    ({"tenant_cards": {"a": 20, "b": 9}}, ONE,
     "tenant_cards.b.h100-sxm: asks for 9 cards; 8 h100-sxm are left for training"),
    ({"tenant_cards": {"a": {"mi300x": 4}}}, ONE, "tenant_cards.a.mi300x: no card of type 'mi300x'"),
    ({"tenant_cards": {"a": 4}}, TWO, "tenant_cards.a: a bare card count needs a cluster of one card type"),
    ({"tenant_cards": {"a": 0}}, ONE, "tenant_cards.a: a silo of 0 cards"),
])
def test_bad_sizes_name_the_field(params, view, message):
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        StaticPartition(**params).partition(view)


@pytest.mark.parametrize("spec, message", [
    ({}, "tenant_cards: expected a non-empty mapping"),
    ({"a": -1}, "tenant_cards.a: expected a card count"),
    ({"a": {"h100-sxm": 1.5}}, "tenant_cards.a.h100-sxm: expected a card count"),
    ({"a": "all"}, "tenant_cards.a: expected a card count"),
    ([1, 2], "tenant_cards: expected a non-empty mapping"),
])
def test_bad_tenant_cards_values(spec, message):
    with pytest.raises(ValueError, match="^" + message):
        StaticPartition(tenant_cards=spec)


def _policies() -> dict:
    return dict(admission=registry.make("admission", "accept_all"), ordering=registry.make("ordering", "fifo"),
                placement=registry.make("placement", "packed"), preemption=registry.make("preemption", "none"))


def _jobs(n: int, seed: int, cards: int, tenants: tuple[str, ...], weights=None) -> JobTable:
    return uniform_jobs(n, rate_per_s=1 / 60.0, mean_duration_s=300.0, rng=seed, num_cards=cards,
                        tenants=tenants, tenant_weights=weights)


def _silos(layout, plan, jobs: JobTable) -> list[Silo]:
    names = np.array(jobs.tenants, dtype=object)[jobs.tenant]
    out = [Silo(t, c, jobs.take(np.flatnonzero(names == t))) for t, c in plan.tenant_cards.items()]
    rest = np.flatnonzero(~np.isin(names, list(plan.tenant_cards)))
    if plan.rest_cards is not None and plan.rest_cards.size:
        out.append(Silo("(shared)", plan.rest_cards, jobs.take(rest)))
    return out


@settings(max_examples=25, deadline=20_000, suppress_health_check=[HealthCheck.too_slow])
@given(sizes=st.lists(st.integers(1, 11), min_size=1, max_size=3), n_jobs=st.integers(1, 30),
       cards=st.sampled_from([1, 2, 4, 8]), failures=st.booleans(), seed=st.integers(0, 2**16))
def test_no_job_ever_holds_a_card_outside_its_silo(sizes, n_jobs, cards, failures, seed):
    layout = layout_from_node_groups([("h100-sxm", 4, 10)])   # 40 cards, 4-card domains
    names = tuple(f"t{k}" for k in range(len(sizes))) + ("other",)
    plan = StaticPartition(inference_cards={"h100-sxm": 4},
                           tenant_cards=dict(zip(names, sizes, strict=False))).partition(
        PoolView(layout.card_types, layout.card_type, layout.card_domain))
    jobs = _jobs(n_jobs, seed, cards, names)
    sim = Simulation(layout, seed=seed, reserved_cards=plan.inference_cards)
    fm = FailureModel(card_mtbf_s=4000.0 * 40, restart_delay_s=5.0, checkpoint_cost_s=1.0) if failures else None
    silos = _silos(layout, plan, jobs)
    group = TrainingSilos(silos, **_policies(), failures=fm)
    sim.training = sim.add(group)
    checked = [0]

    def audit() -> None:
        for s, eng in zip(silos, group.engines, strict=True):
            inside = np.zeros(layout.n_cards, bool)
            inside[s.cards] = True
            for row, (c, _) in eng.state.alloc.items():
                assert inside[c].all(), f"a job of silo {s.name} holds a card outside it"
                assert eng.table.tenants[eng.tenant[row]] == s.name or s.name == "(shared)"
        sim.ledger.check(training=(c for eng in group.engines for c, _ in eng.state.alloc.values()))
        assert not (sim.ledger.state[plan.inference_cards] == TRAINING).any()
        checked[0] += 1

    def audited(f):
        def wrapped(*a, **kw):
            out = f(*a, **kw)
            audit()
            return out
        return wrapped

    for eng in group.engines:  # audit after every allocation and release of every silo
        for meth in ("allocate", "release"):
            setattr(eng.state, meth, audited(getattr(eng.state, meth)))
    sim.run()
    rec = sim.collect()
    assert len(rec.jobs["job_id"]) == n_jobs and list(rec.jobs["job_id"]) == sorted(jobs.job_id.tolist())
    ten = np.array(rec.meta["tenants"], dtype=object)[rec.jobs["tenant"]]
    size = {s.name: s.cards.size for s in silos}
    for t, st_, num in zip(ten.tolist(), rec.jobs["status"].tolist(), rec.jobs["num_cards"].tolist(),
                           strict=True):
        silo = t if t in size else "(shared)"
        assert st_ == ("rejected" if num > size[silo] else "finished"), (t, st_, num)  # never waits forever
    started = int((rec.jobs["status"] == "finished").sum())
    assert checked[0] >= 2 * started
    cs = rec.pool["card_seconds"]
    assert abs(sum(cs.values()) - layout.n_cards * rec.t_end_s) <= 1e-9 * max(layout.n_cards * rec.t_end_s, 1)


def test_a_job_larger_than_its_silo_is_rejected_at_submit():
    layout = layout_from_node_groups([("h100-sxm", 8, 4)])
    plan = StaticPartition(inference_cards={"h100-sxm": 0}, tenant_cards={"a": 8}).partition(
        PoolView(layout.card_types, layout.card_type, layout.card_domain))
    jobs = JobTable(job_id=[0, 1], submit_s=[10.0, 20.0], num_cards=[16, 16], duration_s=[100.0, 100.0],
                    tenant=[0, 1], tenants=("a", "b"))
    sim = Simulation(layout, seed=0)
    sim.training = sim.add(TrainingSilos(_silos(layout, plan, jobs), **_policies()))
    sim.run()
    rec = sim.collect()
    assert rec.jobs["status"].tolist() == ["rejected", "finished"]
    assert rec.jobs["reject_reason"][0] == "needs 16 cards; the cluster has 8 of its types"
    assert rec.jobs["finish_s"][1] == pytest.approx(120.0)


def test_one_silo_of_every_card_is_exactly_no_silo():
    layout = layout_from_node_groups([("h100-sxm", 8, 4)])
    jobs = _jobs(60, 3, 8, ("a",))
    plain = Simulation(layout, seed=1)
    plain.add_training(jobs, **_policies())
    plain.run()
    siloed = Simulation(layout, seed=1)
    siloed.training = siloed.add(TrainingSilos([Silo("a", np.arange(32), jobs)], **_policies()))
    siloed.run()
    a, b = plain.collect(), siloed.collect()
    for k in ("status", "first_start_s", "finish_s", "wait_s"):
        assert np.array_equal(a.jobs[k], b.jobs[k]), k
    assert a.events == b.events
    assert np.allclose(a.level_integral, b.level_integral, rtol=1e-12, atol=1e-9)
    assert np.array_equal(a.segments, b.segments)


def test_uniform_jobs_tenants_are_drawn_after_every_other_column():
    base = uniform_jobs(200, 0.01, 100.0, rng=5)
    two = uniform_jobs(200, 0.01, 100.0, rng=5, tenants=("x", "y"), tenant_weights=[3, 1])
    for c in ("submit_s", "duration_s", "num_cards"):
        assert np.array_equal(getattr(base, c), getattr(two, c))
    share = float(np.mean(two.tenant == 0))
    assert 0.65 < share < 0.85   # 3:1 weights; 200 draws
    with pytest.raises(ConfigError, match=r"^uniform_jobs.tenant_weights: expected 2 numbers"):
        uniform_jobs(10, 0.01, 100.0, tenants=("x", "y"), tenant_weights=[1])
