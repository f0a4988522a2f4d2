"""Preemption policies: which running jobs to evict so a blocked job can start.

The engine asks only when the job at the head of the queue cannot be placed. It checks that
every victim is running, preemptible and one the policy may evict (:meth:`eligible`; without
that method, of strictly lower priority), then makes the preemption a *dry run* of the placement
policy on the cluster without the victims: only if that placement succeeds are the victims
checkpointed (no work lost) and re-queued, and the waiting job starts on exactly those cards in
the same cycle. Victims whose cards the dry-run placement does not use are spared. When the
policy's own choice (:meth:`select`, enough cards by count) does not let the placement policy
place the job (e.g. ``topology_aware`` refusing a split), the engine tries every candidate the
policy offers (:meth:`candidates`) before giving up.

* ``none``: never preempt.
* ``priority``: evict preemptible jobs of lower priority, lowest priority and youngest first.
* ``order``: evict preemptible jobs the *ordering policy* ranks behind the waiting job, now (the
  engine passes every running job's current ordering key in a :class:`KeyedRunningView`). With
  the ``tiresias`` ordering the key is the job's queue, so a waiting job evicts jobs of lower
  queues: Tiresias' preemptive discretized LAS.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..base import ClusterView, JobView, Policy, Preemption, RunningView

__all__ = ["KeyedRunningView", "NoPreemption", "OrderPreemption", "PriorityPreemption"]


@dataclass(frozen=True, eq=False)
class KeyedRunningView(RunningView):
    """A :class:`RunningView` plus ordering keys: ``key`` holds each running job's key now (its
    attained service counted up to the current instant) and ``job_key`` the waiting job's."""

    key: np.ndarray
    job_key: float


class NoPreemption(Policy):
    """Never preempt."""

    name = "none"
    family = "preemption"

    def select(self, job: JobView, running: RunningView, cluster: ClusterView) -> Preemption:
        """No victims."""
        return Preemption()

    def eligible(self, job: JobView, running: RunningView) -> np.ndarray:
        """No running job may be evicted."""
        return np.zeros(len(running), dtype=bool)


class _Evicting(Policy):
    """Shared victim selection: walk the eligible jobs in :meth:`_order` until the job fits."""

    family = "preemption"

    def eligible(self, job: JobView, running: RunningView) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def _order(self, cand: np.ndarray, running: RunningView) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def candidates(self, job: JobView, running: RunningView, cluster: ClusterView) -> Preemption:
        """Every running job this policy may evict for ``job``, most evictable first."""
        if len(running) == 0:
            return Preemption()
        cand = np.flatnonzero(self.eligible(job, running))
        return Preemption(tuple(int(x) for x in running.idx[self._order(cand, running)]))

    def select(self, job: JobView, running: RunningView, cluster: ClusterView) -> Preemption:
        """Victims (engine rows), or none if evicting every candidate would not be enough."""
        if len(running) == 0:
            return Preemption()
        cand = np.flatnonzero(self.eligible(job, running))
        if cand.size == 0:
            return Preemption()
        order = self._order(cand, running)
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


class PriorityPreemption(_Evicting):
    """Evict lower-priority preemptible jobs, lowest priority and youngest first.

    Victims are added until the whole free cards of the waiting job's allowed types, plus the
    victims' cards of those types, cover its request. Fractional (shared-card) requests and
    single-node requests are served only if one node's free plus freed cards would fit them.

    Parameters
    ----------
    min_priority_gap : int
        A victim's priority must be at least this much below the waiting job's.
    """

    name = "priority"
    family = "preemption"

    def __init__(self, *, min_priority_gap: int = 1) -> None:
        if not min_priority_gap >= 1:
            raise ValueError(f"min_priority_gap must be >= 1 (a job may never evict an equal), "
                             f"got {min_priority_gap!r}")
        self.min_priority_gap = min_priority_gap

    def eligible(self, job: JobView, running: RunningView) -> np.ndarray:
        """Preemptible running jobs at least ``min_priority_gap`` below the waiting job."""
        return np.asarray(running.preemptible, bool) & (running.priority <= job.priority - self.min_priority_gap)

    def _order(self, cand: np.ndarray, running: RunningView) -> np.ndarray:
        return cand[np.lexsort((running.idx[cand], -running.start_s[cand], running.priority[cand]))]


class OrderPreemption(_Evicting):
    """Evict preemptible jobs the ordering policy ranks behind the waiting job (keys now).

    A running job is a candidate when its current ordering key is at least ``min_key_gap`` above
    the waiting job's (with ``tiresias`` ordering: a lower queue); the most lagging key goes first,
    then the youngest. Victims are added as for ``priority`` (enough cards by count, or one node).

    Parameters
    ----------
    min_key_gap : float
        How far (in key units; one queue with ``tiresias``) behind a victim must rank. Must be > 0
        (a job may never evict one it ranks equal to).
    """

    name = "order"
    family = "preemption"
    needs_keys = True

    def __init__(self, *, min_key_gap: float = 1.0) -> None:
        if not min_key_gap > 0:
            raise ValueError(f"min_key_gap must be > 0, got {min_key_gap!r}")
        self.min_key_gap = min_key_gap

    def eligible(self, job: JobView, running: RunningView) -> np.ndarray:
        """Preemptible running jobs whose key is at least ``min_key_gap`` above the waiting job's."""
        if not isinstance(running, KeyedRunningView):
            return np.zeros(len(running), dtype=bool)
        return np.asarray(running.preemptible, bool) & (running.key >= running.job_key + self.min_key_gap)

    def _order(self, cand: np.ndarray, running: RunningView) -> np.ndarray:
        key = running.key if isinstance(running, KeyedRunningView) else np.zeros(len(running))
        return cand[np.lexsort((running.idx[cand], -running.start_s[cand], -key[cand]))]
