"""Named training schedulers: each is a preset of the four stages (admission, ordering,
placement, preemption), optionally with a backfill mode (``"easy"`` or ``"greedy"``).
``policy.training.scheduler: tiresias`` picks one; stages given explicitly in the config
override the preset's.

``tiresias`` is Tiresias' discretized 2D-LAS (Gu et al., NSDI'19): the ``tiresias`` ordering
(priority queues by attained card-seconds, FIFO within a queue) with ``order`` preemption (a job
evicts running jobs of lower queues). Each preset differs from the others in at least one stage
or in its backfill mode.
"""

from __future__ import annotations

__all__ = ["PRESETS"]

PRESETS: dict[str, dict[str, str]] = {
    "fifo": {"admission": "accept_all", "ordering": "fifo", "placement": "packed", "preemption": "none"},
    "sjf": {"admission": "accept_all", "ordering": "sjf", "placement": "packed", "preemption": "none"},
    "tiresias": {"admission": "accept_all", "ordering": "tiresias", "placement": "packed",
                 "preemption": "order"},
    "priority": {"admission": "accept_all", "ordering": "priority", "placement": "packed",
                 "preemption": "priority"},
    "gavel": {"admission": "accept_all", "ordering": "fifo", "placement": "heterogeneity_aware",
              "preemption": "none"},
    "fgd": {"admission": "accept_all", "ordering": "fifo", "placement": "fragmentation_aware",
            "preemption": "none", "backfill": "greedy"},
    "kube": {"admission": "accept_all", "ordering": "fifo", "placement": "packed", "preemption": "none",
             "backfill": "greedy"},
    "easy": {"admission": "accept_all", "ordering": "fifo", "placement": "packed", "preemption": "none",
             "backfill": "easy"},
    "topology": {"admission": "accept_all", "ordering": "fifo", "placement": "topology_aware",
                 "preemption": "none"},
}
"""Scheduler name -> stage -> registry name (and optionally ``backfill`` -> mode)."""
