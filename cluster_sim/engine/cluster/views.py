"""The read-only views the training engine hands to its policies (a mixin of
:class:`~cluster_sim.engine.cluster.training.TrainingEngine`): one job, a batch of jobs for ordering keys,
the running jobs for preemption (with their current ordering keys when the policy asks).

``attained_s`` in every view is :meth:`TrainingViews.service_s`: the seconds a job has run,
counted since its last starvation promotion (an ordering's ``promote_after_s``, e.g. Tiresias';
without promotions it is simply the run time so far).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import PlacementError
from ...policies.base import JobsView, JobView, RunningView, readonly
from ...policies.training.preemption import KeyedRunningView

__all__ = ["FINISHED", "PENDING", "QUEUED", "REJECTED", "RESTARTING", "RUNNING", "STATUS_NAMES",
           "TrainingViews"]

PENDING, QUEUED, RUNNING, FINISHED, REJECTED, RESTARTING = range(6)
STATUS_NAMES = ("pending", "queued", "running", "finished", "rejected", "restarting")


class TrainingViews:
    """Views of the engine's per-job state (the engine sets every attribute declared here)."""

    job_id: list[int]
    num: list[int]
    milli: list[int]
    mask: list[int]
    kind: list[int]
    tenant: list[int]
    prio: list[int]
    preemptible: list[bool]
    submit: list[float]
    dur: list[float]
    single: list[bool]
    cpu: list[int]
    mem: list[int]
    attained: list[float]
    svc_base: list[float]
    last: list[float]
    status: list[int]
    run_start: np.ndarray
    running_set: dict[int, None]
    table: Any
    ordering: Any
    state: Any

    def service_s(self, i: int, now: float | None = None) -> float:
        """Seconds row ``i`` has run (``attained_s`` of the views): up to ``now`` if given and it
        runs, and counted since its last starvation promotion (an ordering's ``promote_after_s``)."""
        a = self.attained[i] - self.svc_base[i]
        if now is not None and self.status[i] == RUNNING:
            a += now - self.last[i]
        return a

    def job_view(self, i: int, now: float | None = None) -> JobView:
        """The read-only view of engine row ``i`` (service up to ``now``, see :meth:`service_s`)."""
        return JobView(i, self.job_id[i], self.num[i], self.milli[i], self.mask[i], self.kind[i],
                       self.tenant[i], self.prio[i], self.preemptible[i], self.submit[i], self.dur[i],
                       self.service_s(i, now), self.single[i], self.cpu[i], self.mem[i])

    def jobs_view(self, rows: list[int], now: float | None = None) -> JobsView:
        """Read-only columns of several rows (for ordering keys; service as in :meth:`service_s`)."""
        idx = np.array(rows, dtype=np.int64)
        J = self.table
        return JobsView(idx=readonly(idx), submit_s=readonly(J.submit_s[idx]), duration_s=readonly(J.duration_s[idx]),
                        num_cards=readonly(J.num_cards[idx]), card_milli=readonly(J.card_milli[idx]),
                        priority=readonly(J.priority[idx]), tenant=readonly(J.tenant[idx]),
                        attained_s=readonly(np.array([self.service_s(i, now) for i in rows], np.float64)),
                        kind=readonly(J.kind[idx]))

    def scheduler_keys(self, rows: list[int], now: float | None = None) -> list[float]:
        """Ordering-policy keys of ``rows`` (validated: one finite-or-inf float each)."""
        keys = self.ordering.keys(self.jobs_view(rows, now)).keys
        if keys.shape != (len(rows),) or not (keys == keys).all():
            raise PlacementError(f"ordering policy {getattr(self.ordering, 'name', '?')!r}: returned "
                                 f"{keys.shape} keys (NaN not allowed) for {len(rows)} jobs")
        return keys.tolist()

    def running_view(self, now: float | None = None, job_key: float | None = None) -> RunningView:
        """All running jobs (for preemption); with ``job_key`` (the waiting job's ordering key) a
        :class:`KeyedRunningView` holding every running job's ordering key at ``now``."""
        rows = sorted(self.running_set)
        idx = np.array(rows, dtype=np.int64)
        cols: dict[str, Any] = dict(
            idx=readonly(idx), priority=readonly(np.array([self.prio[i] for i in rows], np.int64)),
            preemptible=readonly(np.array([self.preemptible[i] for i in rows], bool)),
            start_s=readonly(np.array([self.run_start[i] for i in rows], float)),
            card_milli=readonly(np.array([self.milli[i] for i in rows], np.int64)),
            cards=tuple(readonly(self.state.alloc[i][0]) for i in rows))
        if job_key is None:
            return RunningView(**cols)
        keys = self.scheduler_keys(rows, now) if rows else []
        return KeyedRunningView(**cols, key=readonly(np.array(keys, np.float64)), job_key=float(job_key))
