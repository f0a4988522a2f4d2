"""Ordering policies: the queue's sort key, computed when a job enters the queue.

Smaller keys run first; ties go to the earlier submission, then the lower job id. Keys are
fixed while a job waits (a preempted or restarted job gets a new key when it re-enters).
"""

from __future__ import annotations

import numpy as np

from ..base import JobsView, OrderKeys, Params

__all__ = ["FIFO", "LAS", "SJF", "PriorityOrder"]


class FIFO(Params):
    """First come, first served (key = submit time)."""

    registry_name = "fifo"

    def keys(self, jobs: JobsView) -> OrderKeys:
        """Submit times."""
        return OrderKeys(jobs.submit_s)


class SJF(Params):
    """Shortest job first on the estimated size.

    Parameters
    ----------
    by : str
        ``"duration"`` (isolated run time) or ``"card_seconds"`` (run time x cards).
    """

    registry_name = "sjf"

    def __init__(self, by: str = "duration") -> None:
        self.by = by

    def keys(self, jobs: JobsView) -> OrderKeys:
        """Estimated run time (optionally times cards), minus the time already run."""
        left = np.maximum(jobs.duration_s - jobs.attained_s, 0.0)
        if self.by == "card_seconds":
            left = left * jobs.num_cards * jobs.card_milli / 1000.0
        return OrderKeys(left)


class LAS(Params):
    """Least attained service (Tiresias-like, 2D: attained seconds x cards); new jobs first."""

    registry_name = "las"

    def keys(self, jobs: JobsView) -> OrderKeys:
        """Attained card-seconds."""
        return OrderKeys(jobs.attained_s * jobs.num_cards * jobs.card_milli / 1000.0)


class PriorityOrder(Params):
    """Highest priority first, then first come first served."""

    registry_name = "priority"

    def keys(self, jobs: JobsView) -> OrderKeys:
        """Negated priority (submit time breaks ties)."""
        return OrderKeys(-jobs.priority.astype(np.float64))
