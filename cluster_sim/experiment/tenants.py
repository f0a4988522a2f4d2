"""Tenant silos of a ``static_partition`` pool plan: the jobs split over them, and the
per-tenant summary keys (``tenant.<name>.*``) that compare silos with one pool.

Under ``static_partition`` with ``tenant_cards`` each named tenant's jobs run only on its silo
(one training engine per silo, ``cluster_sim.engine.cluster.silos``), every other tenant's on the
training cards left. A tenant name the jobs lack, or jobs of tenants without a silo when no
training card is left, is a ``ConfigError`` naming the field; a job larger than its silo is
rejected at submit (a note says how many).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..engine.cluster.silos import Silo
from ..errors import ConfigError
from ..policies.pool.partition import PoolPlan
from ..workload.jobs import JobTable

__all__ = ["REST", "tenant_keys", "tenant_silos"]

REST = "(shared)"  # the silo of the training cards in no tenant's silo


def tenant_silos(plan: PoolPlan, jobs: JobTable) -> tuple[list[Silo], list[str]]:
    """Split ``jobs`` over the tenant silos of a ``static_partition`` plan (each named tenant's
    jobs on its silo, every other tenant's on the cards left, :data:`REST`), and the notes: jobs
    larger than their silo (the engine rejects them at submit).

    Raises
    ------
    ConfigError
        ``policy.pool.params.tenant_cards.<tenant>``: a tenant the jobs do not have; or jobs of
        tenants without a silo when no training card is left for them.
    """
    where = "policy.pool.params.tenant_cards"
    known = set(jobs.tenants)
    for ten in plan.tenant_cards:
        if ten not in known:
            raise ConfigError(f"{where}.{ten}: no training job has tenant {ten!r}; the jobs' tenants: "
                              f"{', '.join(jobs.tenants)}")
    names = np.array(jobs.tenants, dtype=object)[jobs.tenant] if len(jobs) else np.zeros(0, object)
    sized = np.where(np.asarray(jobs.card_milli) >= 1000, np.asarray(jobs.num_cards), 0)  # as the engine
    silos, notes = [], []
    for ten, cards in plan.tenant_cards.items():
        mine = np.flatnonzero(names == ten)
        silos.append(Silo(ten, cards, jobs.take(mine)))
        big = int((sized[mine] > cards.size).sum())
        if big:
            notes.append(f"{where}.{ten}: {big} job(s) need more cards than the tenant's silo "
                         f"({cards.size}); rejected at submit")
    rest = plan.rest_cards if plan.rest_cards is not None else np.zeros(0, np.int64)
    others = np.flatnonzero(~np.isin(names, list(plan.tenant_cards)))
    if others.size and rest.size == 0:
        left = sorted(set(names[others].tolist()))
        raise ConfigError(f"{where}: the silos take every training card, but {others.size} job(s) of "
                          f"tenants without a silo ({', '.join(left)}) have none left to run on")
    if rest.size:
        silos.append(Silo(REST, rest, jobs.take(others)))
        big = int((sized[others] > rest.size).sum())
        if big:
            notes.append(f"{where}: {big} job(s) of tenants without a silo need more than the "
                         f"{rest.size} training cards left to them; rejected at submit")
    return silos, notes



def tenant_keys(jobs: pd.DataFrame, meta: dict[str, Any]) -> dict[str, Any]:
    """Per-tenant keys of a pooled run, when it has tenant silos or jobs of two tenants or more.

    * ``tenant.<t>.jobs.{submitted,finished,rejected}``, ``tenant.<t>.jct_s.mean`` (finished
      jobs), ``tenant.<t>.queueing_s.mean`` (started jobs: first start - submit);
    * with silos, per silo (a tenant, or ``(shared)``: the training cards in no silo)
      ``tenant.<s>.silo_cards`` and ``tenant.<s>.utilization.{allocated,busy}``: its cards'
      time-weighted allocated and busy shares (as ``utilization.*``, over the silo's cards).
    """
    silos = meta.get("silos") or []
    names = sorted(set(jobs["tenant"].tolist())) if len(jobs) else []
    if not silos and len(names) < 2:
        return {}
    out: dict[str, Any] = {}
    for t in names:
        j = jobs[jobs["tenant"] == t]
        fin = j[j["status"] == "finished"]
        started = j[j["first_start_s"].notna()]
        out[f"tenant.{t}.jobs.submitted"] = len(j)
        out[f"tenant.{t}.jobs.finished"] = len(fin)
        out[f"tenant.{t}.jobs.rejected"] = int((j["status"] == "rejected").sum())
        out[f"tenant.{t}.jct_s.mean"] = float(fin["jct_s"].mean()) if len(fin) else None
        out[f"tenant.{t}.queueing_s.mean"] = float(started["queueing_s"].mean()) if len(started) else None
    for s in silos:
        names_l, integ = list(s["level_names"]), s["level_integral"]
        cap = float(integ[names_l.index("capacity_cards")])
        key = f"tenant.{s['name']}"
        out[f"{key}.silo_cards"] = int(sum(s["capacity_by_type"]))
        for what in ("allocated", "busy"):
            v = float(integ[names_l.index(f"{what}_cards")])
            out[f"{key}.utilization.{what}"] = v / cap if cap > 0 else None
    return out
