"""The card ledger: transitions, refusals, shares, time-weighted card-seconds, and its use by
the cluster state (allocate / release / failures / a reserved partition) and the Simulation."""

from __future__ import annotations

import numpy as np
import pytest

from cluster_sim.engine import ClusterState, Simulation, layout_from_node_groups
from cluster_sim.engine.pool.ledger import DOWN, IDLE, MOVING, SERVING, STATES, TRAINING, CardLedger
from cluster_sim.errors import PlacementError
from cluster_sim.experiment.drivers import pool_summary, run_training
from cluster_sim.workload.generators import uniform_jobs


def _ledger(n: int = 6) -> CardLedger:
    return CardLedger(np.array([0] * (n // 2) + [1] * (n - n // 2)), ("h100-sxm", "a100-80gb"))


def test_card_seconds_by_state_and_type_hand_computed():
    led = _ledger()
    led.take(np.array([0, 1]), TRAINING, t=10.0)
    led.take(np.array([3]), SERVING, t=20.0)
    led.set(np.array([3]), SERVING, MOVING, t=50.0)
    led.set(np.array([3]), MOVING, IDLE, t=60.0)
    led.give(np.array([0, 1]), TRAINING, t=110.0)
    got = led.card_seconds(120.0)
    assert got == {"idle": 6 * 120 - 200 - 30 - 10, "training": 200.0, "serving": 30.0, "moving": 10.0, "down": 0.0}
    by = led.card_seconds_by_type(120.0)
    assert by["training"] == {"h100-sxm": 200.0, "a100-80gb": 0.0}
    assert by["serving"] == {"h100-sxm": 0.0, "a100-80gb": 30.0}
    assert sum(got.values()) == 6 * 120.0
    led.check()


@pytest.mark.parametrize("first,second", [(TRAINING, SERVING), (SERVING, TRAINING), (SERVING, SERVING),
                                          (TRAINING, TRAINING)])
def test_a_card_is_never_given_to_two_holders(first, second):
    led = _ledger()
    led.take(np.array([2, 4]), first, t=0.0)
    with pytest.raises(PlacementError, match=f"card ledger: card 4 is {STATES[first]}, cannot be given to "
                                              f"{STATES[second]}"):
        led.take(np.array([5, 4]), second, t=1.0)
    assert led.state.tolist() == [IDLE, IDLE, first, IDLE, first, IDLE]  # nothing half-done
    led.check()


def test_fractional_shares_join_only_shared_training_cards():
    led = _ledger()
    led.take(np.array([1]), TRAINING, shared=True, t=0.0)
    led.take(np.array([1]), TRAINING, shared=True, t=0.0)
    assert led.holds[1] == 2 and led.state[1] == TRAINING
    led.take(np.array([2]), TRAINING, t=0.0)
    with pytest.raises(PlacementError, match="card 2 is training, cannot be shared with training"):
        led.take(np.array([2]), TRAINING, shared=True, t=0.0)  # a whole-card job's card takes no share
    led.give(np.array([1]), TRAINING, shared=True, t=5.0)
    assert led.state[1] == TRAINING
    led.give(np.array([1]), TRAINING, shared=True, t=8.0)
    assert led.state[1] == IDLE
    with pytest.raises(PlacementError, match="card 1 is idle, cannot be given back by training"):
        led.give(np.array([1]), TRAINING, t=9.0)
    assert led.card_seconds(10.0)["training"] == 8.0 + 10.0


def test_cluster_state_keeps_the_ledger_in_step_and_refuses_serving_cards():
    lo = layout_from_node_groups([("h100-sxm", 4, 2)])
    led = CardLedger(lo.card_type, lo.card_types)
    st = ClusterState(lo, ledger=led)
    led.take(np.array([7]), SERVING, t=0.0)
    st.allocate(0, [0, 1], 1000, "p")
    st.allocate(1, [2], 250, "p")
    st.allocate(2, [2], 250, "p")
    assert led.state.tolist()[:4] == [TRAINING, TRAINING, TRAINING, IDLE]
    with pytest.raises(PlacementError, match="card ledger: card 7 is serving, cannot be given to training"):
        st.allocate(3, [6, 7], 1000, "p")
    st.release(1)
    assert led.state[2] == TRAINING
    st.release(2)
    st.set_down(5)
    assert led.state[2] == IDLE and led.state[5] == DOWN
    st.set_up(5)
    led.check()
    st.check()


def test_reserve_takes_cards_out_of_the_training_engine():
    lo = layout_from_node_groups([("h100-sxm", 4, 2), ("a100-80gb", 4, 1)])
    st = ClusterState(lo)
    st.reserve([0, 1, 2, 3, 8])
    assert st.type_capacity.tolist() == [4, 3]
    assert st.type_free_whole.tolist() == [4, 3]
    assert st.allocated_milli_by_type().tolist() == [0, 0]
    st.check()
    with pytest.raises(PlacementError, match="over-allocation: card 0"):
        st.allocate(0, [0], 1000, "p")
    with pytest.raises(PlacementError, match=r"set_down: card 2 is in use, reserved or already down"):
        st.set_down(2)
    with pytest.raises(PlacementError, match=r"reserve \(another holder\): card 1 is not free"):
        st.reserve([1])


def test_simulation_record_has_the_ledger_and_the_summary_adds_up():
    lo = layout_from_node_groups([("h100-sxm", 8, 4)])
    jobs = uniform_jobs(300, rate_per_s=0.2, mean_duration_s=60.0, rng=5, num_cards=4)
    sim = Simulation(lo, seed=5, reserved_cards=np.arange(8))
    sim.add_training(jobs, admission=_p("admission", "accept_all"), ordering=_p("ordering", "fifo"),
                     placement=_p("placement", "packed"), preemption=_p("preemption", "none"))
    sim.take_serving(np.arange(8))
    res = run_training(simulation=sim)
    pool = res.record.pool
    t = res.record.t_end_s
    cs = pool["card_seconds"]
    assert sum(cs.values()) == pytest.approx(32 * t, rel=1e-9)
    assert cs["serving"] == 8 * t
    # the training engine's allocated card-seconds (over its 24 cards) are the ledger's training ones
    assert res.summary["utilization.allocated"] * 24 * t == pytest.approx(cs["training"], rel=1e-9)
    s = pool_summary(pool)
    assert s["pool.utilization.serving"] == pytest.approx(8 / 32, rel=1e-12)
    assert s["pool.card_hours.training"] == pytest.approx(cs["training"] / 3600.0)
    assert sum(s[f"pool.utilization.{x}"] for x in STATES) == pytest.approx(1.0, rel=1e-9)


def _p(family, name):
    from cluster_sim.policies import registry

    return registry.make(family, name)


def test_replicas_are_placed_only_on_the_allowed_cards():
    from cluster_sim.engine.serving.pd import place_pools
    from cluster_sim.topology import rail_optimized

    topo = rail_optimized("dgx-a100", 2)  # 16 a100-80gb cards, 8 per domain
    free = place_pools(topo, [("p", "a100-80gb", 2, 4)])
    assert [c.tolist() for c in free[0]] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    part = place_pools(topo, [("p", "a100-80gb", 2, 4)], allowed=np.arange(8, 16))
    assert [c.tolist() for c in part[0]] == [[8, 9, 10, 11], [12, 13, 14, 15]]
    with pytest.raises(PlacementError, match="needs 3 replicas x 4 a100-80gb cards = 12, the inference "
                                             "partition has 8 free"):
        place_pools(topo, [("p", "a100-80gb", 3, 4)], allowed=np.arange(8, 16))


def test_timeline_bins_are_contiguous_and_add_up():
    """Bins of a width that is not a binary fraction (20 min / 288) end exactly where the next
    starts (the pool-day plot requires it), and their card-seconds add up to the ledger's."""
    led = CardLedger(np.zeros(8, np.int64), ("h100-sxm",))
    bin_s = 1200.0 / 288.0
    led.enable_timeline(bin_s)
    led.take(np.arange(4), SERVING, t=0.0)
    led.take(np.array([4, 5]), TRAINING, t=100.3)
    led.give(np.array([4]), TRAINING, t=777.7)
    tl = led.timeline(1200.0)
    assert len(tl) == 288 and (tl[1:, 0] == tl[:-1, 1]).all() and tl[-1, 1] == 1200.0
    width = tl[:, 1] - tl[:, 0]
    per_state = (tl[:, 2:] * width[:, None]).sum(axis=0)
    cs = led.card_seconds(1200.0)
    assert per_state.tolist() == pytest.approx([cs[s] for s in ("idle", "training", "serving", "moving", "down")])


def test_timeline_by_type_adds_up_per_type_and_sums_to_the_timeline():
    """Two card types: each (state, type) cell of the per-type timeline integrates to the
    ledger's card-seconds of that state and type; summed over types it is :meth:`timeline`."""
    led = _ledger(6)   # cards 0-2 h100-sxm, 3-5 a100-80gb
    led.enable_timeline(300.0)
    led.take(np.array([0, 1]), SERVING, t=0.0)
    led.take(np.array([3, 4, 5]), TRAINING, t=200.0)
    led.give(np.array([4, 5]), TRAINING, t=650.0)
    led.take(np.array([2, 5]), MOVING, t=650.0)   # one card of each type in one transition
    start, end, cards = led.timeline_by_type(1000.0)
    assert cards.shape == (4, len(STATES), 2) and end[-1] == 1000.0
    width = end - start
    by_type = led.card_seconds_by_type(1000.0)
    for si, s in enumerate(STATES):
        for ti, t in enumerate(("h100-sxm", "a100-80gb")):
            assert (cards[:, si, ti] * width).sum() == pytest.approx(by_type[s][t], abs=1e-9)
    tr = STATES.index("training")
    assert cards[:3, tr, 1].tolist() == pytest.approx([3 * 100 / 300, 3.0, (3 * 50 + 1 * 250) / 300])
    tl = led.timeline(1000.0)
    assert np.allclose(tl[:, 2:], cards.sum(axis=2)) and np.array_equal(tl[:, 0], start)


def test_check_against_the_training_allocations():
    led = _ledger(6)
    led.take(np.array([0, 1]), TRAINING, t=0.0)
    led.take(np.array([2]), SERVING, t=0.0)
    led.check(training=[np.array([0]), np.array([1])])
    with pytest.raises(AssertionError, match="not the training jobs' allocations"):
        led.check(training=[np.array([0])])            # card 1 is training with no job on it
    with pytest.raises(AssertionError, match="not the training jobs' allocations"):
        led.check(training=[np.array([0, 1, 2])])      # card 2 serves
