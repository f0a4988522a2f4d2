"""Preemption policies: which running jobs to evict so a blocked job can start.

The engine asks only when the job at the head of the queue cannot be placed; it checks that
every victim is running, preemptible and of strictly lower priority, checkpoints it (no work
lost) and puts it back in the queue.
"""

from __future__ import annotations

import numpy as np

from ..base import ClusterView, JobView, Params, Preemption, RunningView

__all__ = ["NoPreemption", "PriorityPreemption"]


class NoPreemption(Params):
    """Never preempt."""

    registry_name = "none"

    def select(self, job: JobView, running: RunningView, cluster: ClusterView) -> Preemption:
        """No victims."""
        return Preemption()


class PriorityPreemption(Params):
    """Evict lower-priority preemptible jobs, lowest priority and youngest first.

    Victims are added until the whole free cards of the waiting job's allowed types, plus the
    victims' cards of those types, cover its request. Fractional (shared-card) requests and
    single-node requests are served only if one node's free plus freed cards would fit them.

    Parameters
    ----------
    min_priority_gap : int
        A victim's priority must be at least this much below the waiting job's.
    """

    registry_name = "priority"

    def __init__(self, min_priority_gap: int = 1) -> None:
        self.min_priority_gap = min_priority_gap

    def select(self, job: JobView, running: RunningView, cluster: ClusterView) -> Preemption:
        """Victims (engine rows), or none if evicting every candidate would not be enough."""
        if len(running) == 0:
            return Preemption()
        eligible = running.preemptible & (running.priority <= job.priority - self.min_priority_gap)
        cand = np.flatnonzero(eligible)
        if cand.size == 0:
            return Preemption()
        order = cand[np.lexsort((running.idx[cand], -running.start_s[cand], running.priority[cand]))]
        allowed = np.zeros(len(cluster.card_types), dtype=bool)
        allowed[cluster.types_of(job.type_mask)] = True
        if job.whole and not job.single_node:
            need = job.num_cards - cluster.free_whole_in(job.type_mask)
            victims: list[int] = []
            for i in order.tolist():
                cards = running.cards[i]
                whole = running.card_milli[i] >= 1000
                gain = int(allowed[cluster.card_type[cards]].sum()) if whole else 0
                if gain == 0:
                    continue
                victims.append(int(running.idx[i]))
                need -= gain
                if need <= 0:
                    return Preemption(tuple(victims))
            return Preemption()
        return self._one_node(job, running, cluster, order, allowed)

    @staticmethod
    def _one_node(job: JobView, running: RunningView, cluster: ClusterView, order: np.ndarray,
                  allowed: np.ndarray) -> Preemption:
        """Free one node (or one card, for a share) enough for ``job``, evicting least first."""
        free = cluster.card_free_milli.astype(np.int64).copy()
        victims: dict[int, list[int]] = {}
        for i in order.tolist():
            cards = running.cards[i]
            if not allowed[cluster.card_type[cards[0]]]:
                continue
            node = int(cluster.card_node[cards[0]])
            if (cluster.card_node[cards] != node).any():
                continue
            victims.setdefault(node, []).append(int(running.idx[i]))
            free[cards] += int(running.card_milli[i])
            row = cluster.node_cards[node]
            row = row[row < cluster.n_cards]
            f = free[row]
            ok = (f >= job.card_milli).any() if not job.whole else (f >= 1000).sum() >= job.num_cards
            if ok:
                return Preemption(tuple(victims[node]))
        return Preemption()
