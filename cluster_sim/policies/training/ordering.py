"""Ordering policies: the queue's sort key, computed when a job enters the queue.

Smaller keys run first; ties go to the earlier submission, then the lower job id. Keys are
fixed while a job waits (a preempted or restarted job gets a new key when it re-enters).

An ordering whose keys change with time may tell the engine when (event-driven, no polling):
``rerank_after_s(job)`` -- seconds of further running after which a running job's key changes --
and ``promote_after_s(job)`` -- seconds of waiting after which a waiting job is promoted (its
service counter restarts and it is re-keyed). :class:`Tiresias` uses both; ``las`` ranks by the
raw attained service and, without preemption, keeps arrival order while every job waits unserved.
"""

from __future__ import annotations

import math

import numpy as np

from ..base import JobsView, JobView, OrderKeys, Policy

__all__ = ["FIFO", "LAS", "SJF", "PriorityOrder", "Tiresias"]


class FIFO(Policy):
    """First come, first served (key = submit time)."""

    name = "fifo"
    family = "ordering"

    def keys(self, jobs: JobsView) -> OrderKeys:
        """Submit times."""
        return OrderKeys(jobs.submit_s)


class SJF(Policy):
    """Shortest job first on the estimated size.

    Parameters
    ----------
    by : str
        ``"duration"`` (isolated run time) or ``"card_seconds"`` (run time x cards).
    """

    name = "sjf"
    family = "ordering"

    def __init__(self, *, by: str = "duration") -> None:
        self.by = by

    def keys(self, jobs: JobsView) -> OrderKeys:
        """Estimated run time (optionally times cards), minus the time already run."""
        left = np.maximum(jobs.duration_s - jobs.attained_s, 0.0)
        if self.by == "card_seconds":
            left = left * jobs.num_cards * jobs.card_milli / 1000.0
        return OrderKeys(left)


class LAS(Policy):
    """Least attained service (2D: attained seconds x cards), continuous; new jobs first.

    Keys are fixed while a job waits, so on its own (no preemption) this only reorders jobs that
    were preempted or restarted; :class:`Tiresias` is the discretized, preemptive scheduler."""

    name = "las"
    family = "ordering"

    def keys(self, jobs: JobsView) -> OrderKeys:
        """Attained card-seconds."""
        return OrderKeys(jobs.attained_s * jobs.num_cards * jobs.card_milli / 1000.0)


class PriorityOrder(Policy):
    """Highest priority first, then first come first served."""

    name = "priority"
    family = "ordering"

    def keys(self, jobs: JobsView) -> OrderKeys:
        """Negated priority (submit time breaks ties)."""
        return OrderKeys(-jobs.priority.astype(np.float64))


class Tiresias(Policy):
    """Tiresias' discretized 2D-LAS (Gu et al., NSDI'19): K priority queues by attained service.

    A job's attained service is cards x seconds run (``attained_s * num_cards * card_milli /
    1000``, card-seconds). Queue ``q`` holds the jobs whose service lies in ``[thresholds[q-1],
    thresholds[q])``; a new job starts in the top queue (0) and is demoted when its service
    crosses the next threshold. The key is the queue index, so the engine's tie-break (submit
    time, then job id) makes each queue FIFO. Together with the ``order`` preemption policy (the
    ``tiresias`` preset), a waiting job evicts running jobs of lower queues.

    The engine re-evaluates only where something changes: :meth:`rerank_after_s` tells it when a
    running job's service will cross its next threshold, :meth:`promote_after_s` when a waiting
    job becomes starved. With ``starve`` set, a job in a lower queue that has waited ``starve`` x
    its service time (seconds run since it was last promoted) is promoted to the top queue and its
    service counter restarts from zero (the engine then passes ``attained_s`` counted since that
    promotion), as ``solve_starvation`` does in the Tiresias simulator (there the wait is summed
    over waiting spells since the promotion; here it is the current spell).

    Parameters
    ----------
    thresholds : sequence of float
        Ascending queue limits in card-seconds (K queues = ``len(thresholds) + 1``). The default,
        one limit of 3250 card-seconds (two queues), is the first queue limit of the Tiresias
        simulator (SymbioticLab/Tiresias, ``simulator/jobs.py``: ``queue_limit = [3250, 7200,
        18000]``, GPU-seconds with ``dlas-gpu``).
    starve : float, optional
        Starvation guard: promote after waiting ``starve`` x its service time (None = off).
    """

    name = "tiresias"
    family = "ordering"

    def __init__(self, *, thresholds: tuple[float, ...] | list[float] = (3250.0,),
                 starve: float | None = None) -> None:
        self.thresholds = thresholds
        self.starve = starve
        thr = np.asarray(thresholds, dtype=np.float64).reshape(-1)
        if not np.isfinite(thr).all() or (thr <= 0).any() or (np.diff(thr) <= 0).any():
            raise ValueError(f"thresholds must be positive, finite and strictly ascending, got {thresholds!r}")
        if starve is not None and not starve > 0:
            raise ValueError(f"starve must be > 0 (or None), got {starve!r}")
        self._thr = thr

    def queue(self, service_cs: np.ndarray | float) -> np.ndarray:
        """Queue index (0 = top) of attained service ``service_cs`` (card-seconds).

        A service within a relative 1e-9 of a threshold counts as having crossed it, so an event
        scheduled at the crossing time demotes the job despite rounding."""
        cs = np.asarray(service_cs, dtype=np.float64)
        return np.searchsorted(self._thr, cs * (1.0 + 1e-9) + 1e-9, side="right")

    def keys(self, jobs: JobsView) -> OrderKeys:
        """Queue index of each job (smaller = served first)."""
        cs = jobs.attained_s * jobs.num_cards * jobs.card_milli / 1000.0
        return OrderKeys(self.queue(cs).astype(np.float64))

    def rerank_after_s(self, job: JobView) -> float:
        """Seconds of further running after which ``job`` crosses its next threshold (inf: never)."""
        demand = job.num_cards * job.card_milli / 1000.0
        q = int(self.queue(job.attained_s * demand))
        if q >= self._thr.size or demand <= 0:
            return math.inf
        return max(float(self._thr[q]) / demand - job.attained_s, 0.0)

    def promote_after_s(self, job: JobView) -> float:
        """Seconds of waiting after which the waiting ``job`` is promoted (inf: never)."""
        if self.starve is None or job.attained_s <= 0:
            return math.inf
        if int(self.queue(job.attained_s * job.num_cards * job.card_milli / 1000.0)) == 0:
            return math.inf
        return float(self.starve) * job.attained_s
