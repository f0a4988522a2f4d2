"""Preemption as a dry run of the placement policy, reserved cards, and the no-progress guard.

Two nodes of 8 H100 (each node is one scale-up domain). ``topology_aware`` never splits a job
that fits in one domain, which is what the count-only feasibility of ``priority`` preemption
used to ignore (the livelock of issue 3).
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from cluster_sim.engine.cluster.cycle import MAX_PREEMPTS_PER_INSTANT, NoProgressError
from cluster_sim.errors import ClusterSimError
from cluster_sim.experiment.drivers import run_training
from cluster_sim.policies.base import Params, Preemption
from cluster_sim.workload.jobs import JobTable

TWO_NODES = [("h100-sxm", 8, 2)]


def _table(rows):
    """rows: (submit, cards, duration, priority, preemptible)."""
    s, c, d, p, e = (list(x) for x in zip(*rows, strict=True))
    return JobTable(job_id=np.arange(len(rows)), submit_s=s, num_cards=c, duration_s=d, priority=p, preemptible=e)


def _run(rows, **kw):
    kw = {"placement": "topology_aware", "ordering": "priority", "preemption": "priority",
          "preempt_overhead_s": 5.0, **kw}
    return run_training(cluster=TWO_NODES, jobs=_table(rows), **kw).jobs.set_index("job_id")


def test_no_preemption_when_the_placement_policy_would_refuse_the_freed_cards():
    # node 0: N0 (4 cards, not preemptible, ends 100); node 1: N1 (6, not preemptible, ends 200)
    # and L (2, preemptible). H (6 cards, priority 5) arrives at 10. Evicting L gives 6 free cards
    # by count, but 4 + 2 on two domains: topology_aware refuses, so L must not be evicted (the old
    # count-only engine evicted it for nothing: L then finished at 395 s, or 305 s with backfill).
    rows = [(0.0, 4, 100.0, 0, False), (0.0, 6, 200.0, 0, False), (0.0, 2, 300.0, 0, True),
            (10.0, 6, 50.0, 5, False)]
    for backfill in (False, True):
        j = _run(rows, backfill=backfill)
        assert j.loc[2, "preemptions"] == 0 and j.loc[2, "finish_s"] == pytest.approx(300.0)
        # H starts when N0 leaves node 0 free enough (t = 100)
        assert j.loc[3, "first_start_s"] == pytest.approx(100.0) and j.loc[3, "finish_s"] == pytest.approx(150.0)
        assert j.loc[3, "n_domains"] == 1


def test_preemption_tries_every_candidate_and_spares_unneeded_victims():
    # node 0: L2 (4 cards, preemptible, oldest); node 1: N (5, not preemptible) and L1 (2,
    # preemptible, youngest). H (6 cards) at 10: the count-only choice is L1 (youngest), but then
    # no domain has 6 free. Evicting both lets topology_aware put H on node 0, which uses only L2's
    # cards: L1 is spared, L2 is evicted and H starts at once on the cards freed for it.
    rows = [(0.0, 4, 1000.0, 0, True), (0.0, 5, 100.0, 0, False), (1.0, 2, 500.0, 0, True),
            (10.0, 6, 50.0, 5, False)]
    j = _run(rows)
    assert j.loc[3, "first_start_s"] == pytest.approx(10.0) and j.loc[3, "finish_s"] == pytest.approx(60.0)
    assert j.loc[2, "preemptions"] == 0 and j.loc[2, "finish_s"] == pytest.approx(501.0)
    assert j.loc[0, "preemptions"] == 1
    # L2 ran 10 s, waits for H to leave node 0 (t = 60), stalls 5 s and runs its last 990 s
    assert j.loc[0, "finish_s"] == pytest.approx(60.0 + 5.0 + 990.0)


class _EvictAnyone(Params):
    """A broken preemption policy: evicts whoever runs, whatever its rank (equal ones too)."""

    registry_name = "evict_anyone"

    def select(self, job, running, cluster):
        return Preemption(tuple(int(i) for i in running.idx))

    def eligible(self, job, running):
        return np.ones(len(running), dtype=bool)


def test_a_livelocking_policy_pair_raises_no_progress_naming_both():
    # A and B each need the whole node and may evict each other: B evicts A at t=1, A evicts B at
    # the next cycle, ... all at t=1. The engine must stop with an error, quickly, not hang.
    rows = [(0.0, 8, 100.0, 0, True), (1.0, 8, 100.0, 0, True)]
    t0 = time.perf_counter()
    with pytest.raises(NoProgressError, match=r"no progress at t=1 s: job \d was preempted "
                       rf"{MAX_PREEMPTS_PER_INSTANT + 1} times.*placement policy 'packed', "
                       r"preemption policy 'evict_anyone'"):
        run_training(cluster=[("h100-sxm", 8, 1)], jobs=_table(rows), placement="packed",
                     ordering="fifo", preemption=_EvictAnyone())
    assert time.perf_counter() - t0 < 10.0
    assert issubclass(NoProgressError, ClusterSimError)


def test_victims_outside_the_policys_own_rule_are_rejected():
    class Liar(_EvictAnyone):
        registry_name = "liar"

        def eligible(self, job, running):
            return np.zeros(len(running), dtype=bool)

    rows = [(0.0, 8, 100.0, 0, True), (1.0, 8, 100.0, 0, True)]
    with pytest.raises(ClusterSimError, match="preemption policy 'liar': job row 0 is not one it may evict"):
        run_training(cluster=[("h100-sxm", 8, 1)], jobs=_table(rows), placement="packed", preemption=Liar())
