"""Summary keys of fail-slow episodes (``failures.stragglers``): ``stragglers.*``
(docs/faults_stragglers.md, docs/metrics.md).

From the engine's record (:meth:`~cluster_sim.engine.cluster.stragglers.Stragglers.straggler_record`):

* ``stragglers.episodes``, ``stragglers.detected`` (episodes still on at their detection
  time), ``stragglers.replacements`` (jobs moved off a detected unit, policy ``replace``);
* ``stragglers.jobs_slowed``: jobs that made progress at a speed factor below 1;
* ``stragglers.card_hours_slowed``: their cards x the time they progressed at reduced speed;
* ``stragglers.lost_card_hours``: the progress not made, ``sum cards x (1 - f) x time``;
* ``stragglers.slow_card_hours``: cards in an episode x its time within the run (busy or not);
* ``stragglers.drained_card_hours``: cards drained (out of service) after a detection.

The jobs frame gets ``slowed_s`` (seconds each job progressed at reduced speed).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["add_slowed_column", "summarize_stragglers"]

HOUR = 3600.0


def summarize_stragglers(rec: Mapping[str, Any]) -> dict[str, Any]:
    """The ``stragglers.*`` keys from the engine's straggler record."""
    slowed = np.asarray(rec["slowed_s"], dtype=np.float64)
    return {
        "stragglers.policy": str(rec["policy"]),
        "stragglers.episodes": int(rec["episodes"]),
        "stragglers.detected": int(rec["detected"]),
        "stragglers.replacements": int(rec["replacements"]),
        "stragglers.jobs_slowed": int((slowed > 0).sum()),
        "stragglers.card_hours_slowed": float(np.sum(rec["slow_job_card_s"])) / HOUR,
        "stragglers.lost_card_hours": float(np.sum(rec["lost_card_s"])) / HOUR,
        "stragglers.slow_card_hours": float(rec["slow_card_s"]) / HOUR,
        "stragglers.drained_card_hours": float(rec["drained_card_s"]) / HOUR,
    }


def add_slowed_column(jobs: pd.DataFrame, rec: Mapping[str, Any]) -> None:
    """Add ``slowed_s`` (progressing seconds at reduced speed) to the jobs frame, row by row."""
    slowed = np.asarray(rec["slowed_s"], dtype=np.float64)
    if slowed.size != len(jobs):
        raise ValueError(f"straggler record has {slowed.size} jobs, the jobs frame {len(jobs)}")
    jobs["slowed_s"] = slowed
