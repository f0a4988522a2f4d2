"""Card and node failures with checkpoint/restart (DESIGN.md 3 "Failures"; DOMAIN.md 4.6).

Failures of every card (and node) are independent Poisson processes with the given MTBF, so
the cluster-wide process is Poisson with rate ``cards / card_mtbf + nodes / node_mtbf``; each
failure hits a uniformly chosen card (or node). Times and victims come from the run's
``"failures"`` random stream only, so enabling failures never shifts other streams.

A job holding a failed card loses the work done since its last checkpoint (it checkpoints every
``checkpoint_interval_s`` of progress, each checkpoint stalling it ``checkpoint_cost_s``),
releases all its cards and re-enters the queue after ``restart_delay_s``. The failed card (or
node) is out of service for ``repair_s`` (default: the restart delay).

Explicit checkpoints (``storage_bandwidth_Bps`` set; ``engine/cluster/checkpoints.py``): instead of
the progress factor, each job checkpoints at real events, its write shares the storage bandwidth
with the other jobs writing at once, and a failure loses the progress since its last completed
checkpoint. Per-job checkpoint data (:class:`JobCheckpoint`) comes from the experiment layer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

__all__ = ["UNITS", "FailureClass", "FailureModel", "JobCheckpoint"]


UNITS = ("card", "node", "link", "switch")
"""What a failure class takes down: one card, one node (its cards), one leaf uplink, one leaf switch."""


@dataclass(frozen=True)
class FailureClass:
    """One failure class (docs/faults.md): every unit of ``unit`` fails independently.

    Parameters
    ----------
    name : str
        Class name; its times and victims come from the stream ``"failures.<name>"``.
    unit : str
        ``"card"``, ``"node"``, ``"link"`` (one uplink of a leaf) or ``"switch"`` (a leaf switch).
    mtbf_s : float
        Mean time to failure of ONE unit (seconds), from the time it is (back) in service.
    repair_s : float
        Time a technician needs to repair a failed unit.
    shape : float or None
        Weibull shape ``k`` (None = exponential); the scale is ``mtbf_s / Gamma(1 + 1/k)``.
    """

    name: str
    unit: str
    mtbf_s: float
    repair_s: float
    shape: float | None = None

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(f"failure class {self.name!r}: unit must be one of {UNITS}, got {self.unit!r}")
        if not self.mtbf_s > 0 or not self.repair_s > 0:
            raise ValueError(f"failure class {self.name!r}: mtbf_s and repair_s must be > 0")
        if self.shape is not None and not self.shape > 0:
            raise ValueError(f"failure class {self.name!r}: Weibull shape must be > 0, got {self.shape!r}")

    @property
    def weibull_scale_s(self) -> float:
        """Weibull scale ``lambda`` with mean ``mtbf_s``: ``mtbf_s / Gamma(1 + 1/k)``."""
        return self.mtbf_s / math.gamma(1.0 + 1.0 / self.shape) if self.shape else self.mtbf_s


@dataclass(frozen=True)
class JobCheckpoint:
    """One job's checkpoint (``perf/checkpoint.py``): ``bytes`` written, ``write_cap_Bps`` (its
    writer nodes x per-node write bandwidth; inf = unlimited), ``copy_s`` (the host-memory copy
    of an asynchronous checkpoint) and ``cost_s`` (its stall in the closed form: the write alone,
    or ``copy_s`` when asynchronous)."""

    bytes: float
    write_cap_Bps: float
    copy_s: float
    cost_s: float


@dataclass(frozen=True)
class FailureModel:
    """Failure and checkpoint parameters (seconds).

    Parameters
    ----------
    card_mtbf_s, node_mtbf_s : float or None
        Mean time between failures of one card / one node (None = that kind never fails).
    restart_delay_s : float
        Time from a failure until the job may be scheduled again.
    repair_s : float or None
        Time a failed card or node stays out of service (None = ``restart_delay_s``).
    checkpoint_interval_s : float
        Progress (wall seconds of running) between two checkpoints of a job.
    checkpoint_cost_s : float
        Stall per checkpoint; slows progress by ``interval / (interval + cost)`` (a job in
        ``jobs`` uses its own ``cost_s`` unless ``cost_explicit``).
    storage_bandwidth_Bps : float or None
        Shared storage write bandwidth (bytes/s). Set: checkpoints are explicit engine events
        (``engine/cluster/checkpoints.py``); None: the closed form above.
    async_checkpoint : bool
        Asynchronous (in-memory) checkpoints: the job stalls for ``copy_s``, the persist runs
        in the background.
    cost_explicit : bool
        ``checkpoint_cost_s`` overrides every job's own cost.
    jobs : mapping
        ``{job_id: JobCheckpoint}`` of the jobs whose checkpoint size is known.
    classes : tuple of FailureClass
        Failure classes (exclusive with ``card_mtbf_s`` / ``node_mtbf_s``; docs/faults.md).
    spare_nodes : int
        Spare nodes: a failed node's slot is refilled by a spare after ``swap_s``.
    swap_s : float
        Time to swap a spare node into a failed node's slot.
    technicians : int or None
        Repairs served first come, first served by this many technicians (None = unlimited).
    detection_s : float
        Time from a failure until the job notices it (no progress meanwhile).
    restart_auto : bool
        Restart delay from the job's size: ``restart_base_s + init_per_1k_ranks_s * ranks / 1000``.
    restart_base_s, init_per_1k_ranks_s : float
        The two terms of the automatic restart delay (docs/faults.md; assumptions).
    """

    card_mtbf_s: float | None = None
    node_mtbf_s: float | None = None
    restart_delay_s: float = 600.0
    repair_s: float | None = None
    checkpoint_interval_s: float = 3600.0
    checkpoint_cost_s: float = 60.0
    storage_bandwidth_Bps: float | None = None
    async_checkpoint: bool = False
    cost_explicit: bool = False
    jobs: Mapping[int, JobCheckpoint] = field(default_factory=dict)
    classes: tuple[FailureClass, ...] = ()
    spare_nodes: int = 0
    swap_s: float = 600.0
    technicians: int | None = None
    detection_s: float = 0.0
    restart_auto: bool = False
    restart_base_s: float = 300.0
    init_per_1k_ranks_s: float = 30.0

    def __post_init__(self) -> None:
        for name in ("card_mtbf_s", "node_mtbf_s", "repair_s"):
            v = getattr(self, name)
            if v is not None and not v > 0:
                raise ValueError(f"{name} must be > 0, got {v!r}")
        if self.restart_delay_s < 0 or self.checkpoint_cost_s < 0 or not self.checkpoint_interval_s > 0:
            raise ValueError("restart_delay_s, checkpoint_cost_s must be >= 0 and checkpoint_interval_s > 0")
        if self.storage_bandwidth_Bps is not None and not self.storage_bandwidth_Bps > 0:
            raise ValueError(f"storage_bandwidth_Bps must be > 0, got {self.storage_bandwidth_Bps!r}")
        if self.classes and (self.card_mtbf_s is not None or self.node_mtbf_s is not None):
            raise ValueError("give failure classes or card_mtbf_s / node_mtbf_s, not both")
        if len({c.name for c in self.classes}) != len(self.classes):
            raise ValueError("failure class names must be unique")
        if self.spare_nodes < 0 or self.swap_s < 0 or self.detection_s < 0:
            raise ValueError("spare_nodes, swap_s and detection_s must be >= 0")
        if self.technicians is not None and self.technicians < 1:
            raise ValueError(f"technicians must be >= 1 (None = unlimited), got {self.technicians!r}")
        if self.restart_base_s < 0 or self.init_per_1k_ranks_s < 0:
            raise ValueError("restart_base_s and init_per_1k_ranks_s must be >= 0")

    @property
    def explicit(self) -> bool:
        """True when checkpoints are explicit engine events (a shared storage bandwidth is set)."""
        return self.storage_bandwidth_Bps is not None

    def job_cost_s(self, job_id: int) -> float:
        """Closed-form checkpoint stall of one job: its own cost when known (and not overridden)."""
        jc = self.jobs.get(job_id)
        return self.checkpoint_cost_s if jc is None or self.cost_explicit else jc.cost_s

    def job_progress_factor(self, job_id: int) -> float:
        """:attr:`progress_factor` of one job (1 with explicit checkpoints: they are events)."""
        if self.explicit or not self.active:
            return 1.0
        return self.checkpoint_interval_s / (self.checkpoint_interval_s + self.job_cost_s(job_id))

    @property
    def active(self) -> bool:
        """True when anything can fail."""
        return self.card_mtbf_s is not None or self.node_mtbf_s is not None or bool(self.classes)

    def restart_for(self, ranks: int) -> float:
        """Seconds from a failure until a job of ``ranks`` cards may be scheduled again: the
        detection time plus the restart delay (``restart_delay_s``, or with ``restart_auto`` the
        base plus an NCCL-style initialization that grows linearly with the ranks)."""
        if self.restart_auto:
            return self.detection_s + self.restart_base_s + self.init_per_1k_ranks_s * ranks / 1000.0
        return self.restart_delay_s + self.detection_s

    @property
    def repair_time_s(self) -> float:
        """Seconds a failed unit stays down."""
        return self.restart_delay_s if self.repair_s is None else self.repair_s

    @property
    def progress_factor(self) -> float:
        """Share of running time that is progress (the rest is checkpoint stalls; 1 with
        explicit checkpoints, which are events)."""
        if not self.active or self.explicit:
            return 1.0
        return self.checkpoint_interval_s / (self.checkpoint_interval_s + self.checkpoint_cost_s)

    def rates(self, n_cards: int, n_nodes: int) -> tuple[float, float]:
        """Cluster-wide card and node failure rates, per second."""
        rc = n_cards / self.card_mtbf_s if self.card_mtbf_s else 0.0
        rn = n_nodes / self.node_mtbf_s if self.node_mtbf_s else 0.0
        return rc, rn

    def next_failure(self, t: float, rng: np.random.Generator, n_cards: int,
                     n_nodes: int) -> tuple[float, str, int]:
        """``(time, "card" | "node", unit id)`` of the next failure after ``t``."""
        rc, rn = self.rates(n_cards, n_nodes)
        total = rc + rn
        dt = float(rng.exponential(1.0 / total))
        if rng.random() * total < rc:
            return t + dt, "card", int(rng.integers(n_cards))
        return t + dt, "node", int(rng.integers(n_nodes))

    def lost_work_s(self, run_progress_s: float) -> float:
        """Wall seconds of progress lost when a job that progressed ``run_progress_s`` in this run fails."""
        if run_progress_s <= 0:
            return 0.0
        return run_progress_s % self.checkpoint_interval_s
