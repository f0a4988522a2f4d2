"""The training scheduling cycle: ``admit -> order -> place -> preempt``, with EASY backfill.

A cycle runs after every batch of simultaneous events that changed something (arrival, finish,
failure, repair, preemption). Admission happens on arrival (:meth:`TrainingEngine._arrive`);
the cycle then

1. **orders** the jobs that entered the queue since the last cycle (one ordering-policy call per
   batch; keys stay fixed while a job waits; ties by submit time, then job id);
2. **places** jobs from the head of the queue while the placement policy finds cards;
3. when the head cannot be placed, asks the **preemption** policy for victims (at most once per
   cluster state), evicts them (checkpointed, re-queued at the next cycle) and retries the head;
4. with ``backfill="easy"`` (or True), looks at up to ``backfill_depth`` jobs behind the blocked
   head and starts those that fit now and cannot delay it (EASY): jobs whose allowed card types
   are disjoint from the head's, jobs whose estimated end (submit-time estimate ``duration_s``)
   is before the head's *shadow time* (when enough running jobs will have ended for the head to
   fit, by card counts), or jobs small enough to use only the *extra* cards the head will not need
   at that time. With ``backfill="greedy"`` every waiting job that fits starts, in queue order and
   with no reservation (Kubernetes-style pod scheduling, as in the FGD evaluation); the whole
   queue is scanned, but a job is only re-tried after cards were released since it last failed.
   Without backfill (False) the queue is strict: nothing passes a blocked head.

No cycle rescans the cluster: a job is re-tried only after some cards were released since its
last failed attempt, and a cheap count test (free whole cards of its allowed types) comes first.
"""

from __future__ import annotations

import bisect
import math
from typing import Any

from ..errors import ConfigError, PlacementError
from ..policies import registry
from ..policies.base import Placement

__all__ = ["Scheduler", "training_policies"]


class Scheduler:
    """Queue and cycle of one :class:`~cluster_sim.engine.training.TrainingEngine`."""

    def __init__(self, engine: Any) -> None:
        self.e = engine
        self.view = engine.state.view
        self.queue: list[tuple[float, float, int, int]] = []
        self.pending: list[int] = []
        self._fail: dict[int, int] = {}
        self._preempt_memo: dict[int, tuple[int, int, int]] = {}
        self._shadow_key: tuple[int, int] | None = None
        self._shadow: tuple[float, float] = (math.inf, 0.0)
        self._types: dict[int, list[int]] = {}
        pre = engine.preemption
        self.no_preempt = str(getattr(pre, "name", "")) == "none"
        self.cycles = 0

    # ---- helpers -------------------------------------------------------------------------------
    def _types_of(self, mask: int) -> list[int]:
        t = self._types.get(mask)
        if t is None:
            t = self._types[mask] = self.view.types_of(mask).tolist()
        return t

    def _enqueue_pending(self) -> None:
        e = self.e
        rows, self.pending = self.pending, []
        att = e.attained
        fresh = [r for r in rows if att[r] == 0.0]
        again = [r for r in rows if att[r] != 0.0]
        q = self.queue
        key0 = e.key0
        for r in fresh:
            bisect.insort(q, (key0[r], e.submit[r], e.job_id[r], r))
        if again:
            for r, k in zip(again, e.scheduler_keys(again), strict=True):
                bisect.insort(q, (k, e.submit[r], e.job_id[r], r))

    def _try(self, i: int, force: bool = False) -> Placement | None:
        """Ask the placement policy for job ``i``, after cheap tests that it could fit at all."""
        e, v = self.e, self.view
        types = self._types_of(e.mask[i])
        if e.milli[i] >= 1000:
            tfw = v.type_free_whole
            if sum(int(tfw[t]) for t in types) < e.num[i]:
                return None
        else:
            tfm = v.type_free_milli
            if sum(int(tfm[t]) for t in types) < e.milli[i]:
                return None
        if not force and self._fail.get(i) == e.release_epoch:
            return None
        p = e.placement.place(e.job_view(i), v)
        if p is None:
            self._fail[i] = e.release_epoch
        else:
            self._fail.pop(i, None)
        return p

    # ---- the cycle -------------------------------------------------------------------------------
    def run(self, t: float) -> None:
        """One scheduling cycle at time ``t``."""
        e = self.e
        self.cycles += 1
        if self.pending:
            self._enqueue_pending()
        q = self.queue
        pos = 0
        head = -1
        scanned = 0
        greedy = e.backfill == "greedy"
        while pos < len(q):
            i = q[pos][3]
            if head < 0:
                p = self._try(i)
                if p is None and not self.no_preempt and self._preempt_for(i, t):
                    p = self._try(i, force=True)
                if p is not None:
                    del q[pos]
                    e.start(i, p, t)
                    continue
                head = i
                if not e.backfill:
                    break
                pos += 1
                continue
            if greedy:
                p = self._try(i)
                if p is not None:
                    del q[pos]
                    e.start(i, p, t)
                    continue
                pos += 1
                continue
            scanned += 1
            if scanned > e.backfill_depth:
                break
            rule = self._may_backfill(i, head, t)
            if rule:
                p = self._try(i)
                if p is not None:
                    del q[pos]
                    e.start(i, p, t)
                    if rule == 2:
                        shadow, extra = self._shadow
                        self._shadow = (shadow, extra - e.demand[i])
                    continue
            pos += 1

    # ---- backfill --------------------------------------------------------------------------------
    def _may_backfill(self, i: int, head: int, t: float) -> int:
        """0 = may delay the head; 1 = cannot delay it; 2 = fits in the head's extra cards."""
        e = self.e
        if e.mask[i] & e.mask[head] == 0:
            return 1
        shadow, extra = self.shadow(head, t)
        if t + e.dur[i] <= shadow:
            return 1
        if e.demand[i] <= extra:
            return 2
        return 0

    def shadow(self, head: int, t: float) -> tuple[float, float]:
        """``(shadow time, extra cards)`` of the blocked ``head`` (EASY), cached per rate epoch."""
        e = self.e
        key = (head, e.rate_epoch)
        if key == self._shadow_key and self._shadow[0] >= t:
            return self._shadow
        types = set(self._types_of(e.mask[head]))
        whole = e.milli[head] >= 1000
        need = float(e.num[head]) if whole else e.milli[head] / 1000.0
        have = float(sum(int(self.view.type_free_whole[x]) for x in types)) if whole else 0.0
        items = []
        for j in e.running_set:
            cnt = sum(mm for tt, mm in e.tmilli[j] if tt in types) / 1000.0
            if cnt <= 0 or (whole and e.milli[j] < 1000):
                continue
            r = e.rate[j]
            end = e.last[j] + e.remaining[j] / r if r > 0 else t + e.preempt_overhead_s + e.remaining[j] / max(e.sp[j], 1e-12)
            items.append((end, j, cnt))
        items.sort()
        shadow, extra = math.inf, 0.0
        acc = have
        for end, _, cnt in items:
            acc += cnt
            if acc >= need:
                shadow, extra = end, acc - need
                break
        self._shadow_key = key
        self._shadow = (shadow, extra)
        return self._shadow

    # ---- preemption ------------------------------------------------------------------------------
    def _preempt_for(self, i: int, t: float) -> bool:
        e = self.e
        memo = (e.release_epoch, e.rate_epoch, len(e.running_set))
        if self._preempt_memo.get(i) == memo:
            return False
        self._preempt_memo[i] = memo
        if not e.running_set:
            return False
        job = e.job_view(i)
        dec = e.preemption.select(job, e.running_view(), self.view)
        victims = sorted(set(int(v) for v in dec.victims))
        if not victims:
            return False
        name = getattr(e.preemption, "name", "?")
        for v in victims:
            if v not in e.running_set:
                raise PlacementError(f"preemption policy {name!r}: job row {v} is not running")
            if not e.preemptible[v]:
                raise PlacementError(f"preemption policy {name!r}: job row {v} is not preemptible")
            if e.prio[v] >= job.priority:
                raise PlacementError(f"preemption policy {name!r}: job row {v} (priority {e.prio[v]}) "
                                     f"is not below the waiting job's priority {job.priority}")
        for v in victims:
            e.preempt(v, t)
        return True


def training_policies(tp: Any) -> dict[str, Any]:
    """Policy objects (and ``backfill``) from a ``policy.training`` config section.

    ``scheduler: NAME`` picks a preset (``registry.SCHEDULERS``); stages (and ``backfill``) set
    explicitly in the config override the preset's. A preset may set ``backfill`` to ``"easy"``
    or ``"greedy"`` (the config field itself is a bool: True means EASY).
    """
    stages = ("admission", "ordering", "placement", "preemption")
    refs: dict[str, Any] = {s: getattr(tp, s) for s in stages}
    if tp.scheduler is not None:
        if tp.scheduler not in registry.SCHEDULERS:
            raise ConfigError(f"policy.training.scheduler: unknown scheduler {tp.scheduler!r}; known: "
                              f"{', '.join(sorted(registry.SCHEDULERS))}")
        preset = registry.SCHEDULERS[tp.scheduler]
        for s in stages:
            if s not in tp.model_fields_set:
                refs[s] = preset[s]
    out: dict[str, Any] = {s: registry.make(s, refs[s], where=f"policy.training.{s}") for s in stages}
    out["backfill"] = tp.backfill if isinstance(tp.backfill, str) else ("easy" if tp.backfill else False)
    if tp.scheduler is not None and "backfill" not in tp.model_fields_set:
        out["backfill"] = registry.SCHEDULERS[tp.scheduler].get("backfill", False)
    return out
