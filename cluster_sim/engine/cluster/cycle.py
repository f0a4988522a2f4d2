"""The training scheduling cycle: ``admit -> order -> place -> preempt``, with EASY backfill.

A cycle runs after every batch of simultaneous events that changed something (arrival, finish,
failure, repair, preemption). Admission happens on arrival (:meth:`TrainingEngine._arrive`);
the cycle then

1. **orders** the jobs that entered the queue since the last cycle (one ordering-policy call per
   batch; keys stay fixed while a job waits; ties by submit time, then job id);
2. **places** jobs from the head of the queue while the placement policy finds cards;
3. when the head cannot be placed, asks the **preemption** policy for victims (at most once per
   cluster state) and makes it a *dry run* of the placement policy on the cluster without them
   (:meth:`Scheduler._preempt_for`): only if the head can then be placed are the victims evicted
   (checkpointed, re-queued at the next cycle), and the head starts on exactly the cards the dry
   run chose (they are reserved for it). Victims whose cards the dry run does not use are spared;
   if the policy's count-based choice does not suffice, every candidate it offers is tried;
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

An ordering whose keys change with service (``rerank_after_s`` / ``promote_after_s``, e.g.
Tiresias) gets an event exactly when a running job crosses a threshold or a waiting job is
promoted, never a polling loop (:meth:`Scheduler.on_start`, :meth:`Scheduler.on_enqueue`).

**No progress is an error, not a hang.** A policy pair that keeps evicting and restarting the same
jobs at one simulated instant raises :class:`NoProgressError` naming the placement and the
preemption policy: when one job is preempted more than :data:`MAX_PREEMPTS_PER_INSTANT` times at
one instant, or more than ``1000 + 4 x jobs`` cycles run at one instant.
"""

from __future__ import annotations

import bisect
import heapq
import math
from typing import Any

from ...errors import PlacementError
from ...policies.base import Placement

__all__ = ["MAX_PREEMPTS_PER_INSTANT", "NoProgressError", "Scheduler"]

RERANK, PROMOTE = 6, 7  # engine heap event kinds (after training.FINISH ... RECYCLE = 0 ... 5)
MAX_PREEMPTS_PER_INSTANT = 8
"""Most times one job may be preempted at one simulated instant before the run is declared stuck
(a correct pair preempts a job again at the same instant only for a strictly higher-ranked one)."""


class NoProgressError(PlacementError):
    """The scheduling cycle made no progress at one simulated instant (a livelocked policy pair)."""


class Scheduler:
    """Queue and cycle of one :class:`~cluster_sim.engine.cluster.training.TrainingEngine`."""

    def __init__(self, engine: Any) -> None:
        self.e = engine
        self.view = engine.state.view
        self.queue: list[tuple[float, float, int, int]] = []
        self.pending: list[int] = []
        self._fail: dict[int, int] = {}
        self._preempt_memo: dict[int, tuple[int, int, int, int]] = {}
        self._shadow_key: tuple[int, int] | None = None
        self._shadow: tuple[float, float] = (math.inf, 0.0)
        self._types: dict[int, list[int]] = {}
        pre = engine.preemption
        self.no_preempt = str(getattr(pre, "name", "")) == "none"
        self.cycles = 0
        # no-progress guard: cycles and per-job preemptions at the current instant
        self._instant = -math.inf
        self._cycles_here = 0
        self._preempted_here: dict[int, int] = {}
        self.max_cycles_per_instant = 1000 + 4 * engine.n
        # orderings whose keys change with service: event hooks (None = static keys)
        ordering = engine.ordering
        self._rerank = getattr(ordering, "rerank_after_s", None)
        self._promote = getattr(ordering, "promote_after_s", None)
        self._spell = [0] * engine.n  # run spell of each row (a RERANK event belongs to one)
        self._qspell = [0] * engine.n  # wait spell of each row (a PROMOTE event belongs to one)
        self.rank_epoch = 0
        self._keyed = bool(getattr(pre, "needs_keys", False))

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
        if t != self._instant:
            self._instant, self._cycles_here = t, 0
            self._preempted_here.clear()
        self._cycles_here += 1
        if self._cycles_here > self.max_cycles_per_instant:
            raise self._stuck(t, f"{self._cycles_here} scheduling cycles ran at this instant")
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
                if p is None and not self.no_preempt:
                    p = self._preempt_for(i, t)
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

    # ---- orderings whose keys change (Tiresias) --------------------------------------------------
    def on_start(self, i: int, t: float) -> None:
        """Job ``i`` started at ``t``: schedule the instant its key next changes (if it does)."""
        self._spell[i] += 1
        self._qspell[i] += 1  # ends its wait spell: a pending promotion is void
        if self._rerank is not None:
            self._push_rank(False, i, t, float(self._rerank(self.e.job_view(i, t))), self._spell[i])

    def on_enqueue(self, i: int, t: float) -> None:
        """Job ``i`` entered the queue at ``t``: schedule its starvation promotion (if any)."""
        self._qspell[i] += 1
        if self._promote is not None:
            self._push_rank(True, i, t, float(self._promote(self.e.job_view(i, t))), self._qspell[i])

    def _push_rank(self, promote: bool, i: int, t: float, dt: float, spell: int) -> None:
        if dt == math.inf:
            return
        if not dt >= 0.0 or t + dt < t:
            hook = "promote_after_s" if promote else "rerank_after_s"
            raise PlacementError(f"ordering policy {getattr(self.e.ordering, 'name', '?')!r}: {hook} "
                                 f"returned {dt!r} for job row {i} (need a delay >= 0 or inf)")
        heapq.heappush(self.e._heap, (t + dt, PROMOTE if promote else RERANK, i, spell))

    def on_rank_event(self, promote: bool, i: int, spell: int, t: float) -> None:
        """A scheduled key change is due: a running job crossed a threshold (RERANK) or a waiting
        job is promoted (PROMOTE). Stale events (another run or wait spell) are ignored."""
        e = self.e
        if promote:
            if self._qspell[i] != spell:  # it started since: not waiting in that spell any more
                return
            e.svc_base[i] = e.attained[i]  # the service counter restarts from zero
            q = self.queue
            for pos, entry in enumerate(q):
                if entry[3] == i:
                    del q[pos]
                    bisect.insort(q, (e.scheduler_keys([i])[0], e.submit[i], e.job_id[i], i))
                    break
        else:
            if self._spell[i] != spell or i not in e.running_set:
                return
            if self._rerank is not None:
                self._push_rank(False, i, t, float(self._rerank(e.job_view(i, t))), spell)
        self.rank_epoch += 1
        e.dirty = True
        e.events += 1

    # ---- preemption ------------------------------------------------------------------------------
    def _stuck(self, t: float, what: str) -> NoProgressError:
        e = self.e
        return NoProgressError(
            f"no progress at t={t:g} s: {what} (placement policy {e.placement_name!r}, preemption "
            f"policy {getattr(e.preemption, 'name', '?')!r}); the pair keeps evicting and restarting "
            "jobs without starting any for good")

    def _validate(self, i: int, victims: list[int], running: Any) -> None:
        """Every victim must be running, preemptible, not ``i`` and evictable by the policy."""
        e = self.e
        name = getattr(e.preemption, "name", "?")
        eligible = getattr(e.preemption, "eligible", None)
        ok = None
        if eligible is not None:
            mask = eligible(e.job_view(i), running)
            ok = {int(r) for r, m in zip(running.idx.tolist(), list(mask), strict=True) if m}
        for v in victims:
            if v not in e.running_set:
                raise PlacementError(f"preemption policy {name!r}: job row {v} is not running")
            if not e.preemptible[v]:
                raise PlacementError(f"preemption policy {name!r}: job row {v} is not preemptible")
            if ok is not None and v not in ok:
                raise PlacementError(f"preemption policy {name!r}: job row {v} is not one it may evict "
                                     f"for job row {i} (its eligible() says no)")
            if ok is None and e.prio[v] >= e.prio[i]:
                raise PlacementError(f"preemption policy {name!r}: job row {v} (priority {e.prio[v]}) "
                                     f"is not below the waiting job's priority {e.prio[i]}")

    def _dry_run(self, i: int, victims: list[int]) -> Placement | None:
        """The placement policy's answer for job ``i`` on the cluster with ``victims``' cards freed;
        the cluster state is restored before returning."""
        e = self.e
        st = e.state
        held = [(v, *st.alloc[v]) for v in victims]
        for v in victims:
            st.release(v)
        try:
            return e.placement.place(e.job_view(i), self.view)
        finally:
            for v, cards, milli in reversed(held):
                st.allocate(v, cards, milli, "dry run", None, e.cpu[v], e.mem[v])

    def _feasible(self, i: int, victims: list[int]) -> tuple[list[int], Placement] | None:
        """The dry-run placement and the victims whose cards (nodes, for a job asking for host CPU
        or memory) it uses; the others are spared, since those cards are free once these leave."""
        p = self._dry_run(i, victims)
        if p is None:
            return None
        e = self.e
        alloc, card_node = e.state.alloc, e.state.layout.card_node
        if e.cpu[i] or e.mem[i]:  # host CPU/memory are per node: spare only victims on other nodes
            nodes = set(card_node[p.cards].tolist())
            return [v for v in victims if nodes.intersection(card_node[alloc[v][0]].tolist())], p
        used = set(p.cards.tolist())
        return [v for v in victims if used.intersection(alloc[v][0].tolist())], p

    def _preempt_for(self, i: int, t: float) -> Placement | None:
        """Evict victims for job ``i`` if a dry run shows it can then be placed; return the
        reserved placement (the victims are already evicted) or None (nothing changed)."""
        e = self.e
        memo = (e.release_epoch, e.rate_epoch, len(e.running_set), self.rank_epoch)
        if self._preempt_memo.get(i) == memo:
            return None
        self._preempt_memo[i] = memo
        if not e.running_set:
            return None
        job = e.job_view(i)
        running = e.running_view(t, e.scheduler_keys([i])[0] if self._keyed else None)
        victims = sorted(set(int(v) for v in e.preemption.select(job, running, self.view).victims))
        if not victims:
            return None
        self._validate(i, victims, running)
        found = self._feasible(i, victims)
        more = getattr(e.preemption, "candidates", None)
        if found is None and more is not None:
            allv = sorted(set(int(v) for v in more(job, running, self.view).victims))
            if len(allv) > len(victims):
                self._validate(i, allv, running)
                found = self._feasible(i, allv)
        if found is None:
            return None
        victims, p = found
        here = self._preempted_here
        for v in victims:
            here[v] = here.get(v, 0) + 1
            if here[v] > MAX_PREEMPTS_PER_INSTANT:
                raise self._stuck(t, f"job {e.job_id[v]} was preempted {here[v]} times at this instant")
        for v in victims:
            e.preempt(v, t)
        return p
