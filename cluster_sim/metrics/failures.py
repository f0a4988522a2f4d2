"""The ``failures.*`` summary keys of a run with failure classes (docs/faults.md, docs/metrics.md).

A pure function of the record the training engine's
:class:`~cluster_sim.engine.cluster.failure_process.FailureProcesses` leaves in the run's meta.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import units

__all__ = ["failure_summary"]


def failure_summary(rec: Mapping[str, Any]) -> dict[str, Any]:
    """``failures.*`` keys from ``rec`` (``RunRecord.meta["failures"]``).

    Per class ``<name>``: ``failures`` (units that failed), ``interruptions`` (failures that
    stopped at least one job), ``job_interruptions`` (jobs stopped), ``interruptions_per_day``
    and ``mttr_h`` (mean time from a failure until the unit, or its slot, is back in service, over
    the outages that ended in the run; None if none did); the same over all classes without the
    class name; ``card_hours.<state>`` (up, waiting, repairing, swapping: they add up to cards x
    span), ``swaps``, ``repair_wait_hours`` / ``repair_hours`` (technician queue), ``link_hours_down``
    (uplink-hours out of service) and ``detection_card_hours`` (cards x detection time of the
    interrupted jobs: no progress while the failure goes unnoticed).
    """
    days = float(rec["t_end_s"]) / units.DAY
    out: dict[str, Any] = {}
    tot = {"failures": 0, "interruptions": 0, "job_interruptions": 0}
    down = restored = 0.0
    for c in rec["classes"]:
        p = f"failures.{c['name']}"
        for k in tot:
            out[f"{p}.{k}"] = int(c[k])
            tot[k] += int(c[k])
        out[f"{p}.interruptions_per_day"] = c["interruptions"] / days if days > 0 else None
        out[f"{p}.mttr_h"] = c["down_s"] / c["restored"] / units.HOUR if c["restored"] else None
        down += c["down_s"]
        restored += c["restored"]
    for k, v in tot.items():
        out[f"failures.{k}"] = v
    out["failures.interruptions_per_day"] = tot["interruptions"] / days if days > 0 else None
    out["failures.mttr_h"] = down / restored / units.HOUR if restored else None
    for s, v in rec["card_s"].items():
        out[f"failures.card_hours.{s}"] = v / units.HOUR
    out["failures.swaps"] = int(rec["swaps"])
    out["failures.repair_wait_hours"] = rec["repair_wait_s"] / units.HOUR
    out["failures.repair_hours"] = rec["repair_s"] / units.HOUR
    out["failures.link_hours_down"] = rec["link_down_s"] / units.HOUR
    out["failures.detection_card_hours"] = rec["detection_card_s"] / units.HOUR
    return out
