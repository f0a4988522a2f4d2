"""One serving replica's continuous batch, advanced in one step from one change to the next.

State per replica: a FCFS waiting queue, the running (decoding) batch, the KV tokens in use,
and a counter ``D`` of decode iterations done. A running request stores the value of ``D``
when it joined and its generated count then, so its progress is ``D - join_D`` without ever
being touched per iteration; the batch's total context grows by ``len(running)`` per
iteration. A decode *stretch* runs ``k`` iterations in one event, ``k`` = iterations to the
first finish (a min-heap on ``join_D + output - generated``) or to the KV filling up; its
duration is ``perf.decode_stretch_s`` (closed form). An arrival during a stretch cuts it at
the iteration boundary after the arrival, if (and only if) the arrival can be admitted there.

Semantics (vLLM-like; the property tests hold an iteration-by-iteration loop to them):

* At an iteration boundary, admission first: waiting requests in FCFS order while the batch
  has fewer than ``max_batch_seqs`` requests, their prefill tokens fit ``max_batch_tokens``
  (the first always fits) and KV allows; the head blocks the rest. Admitted prompts are
  prefilled together in one iteration (``perf.prefill_time_s``); each then has its first
  token and joins the batch. Otherwise one decode iteration for the whole batch.
* KV (``upfront=True``, ``on_kv_full: wait``): a request reserves ``prompt + output`` tokens
  at admission and never needs more; admission waits for room. (``upfront=False``,
  ``on_kv_full: preempt``): a request holds ``prompt + generated`` tokens, growing by one per
  iteration; admission needs room for the request plus one token per batch member, minus a
  watermark; when the batch's growth would overflow, the newest requests are preempted (KV
  freed; back to the head of the queue; their tokens are recomputed by a prefill of
  ``prompt + generated`` tokens when readmitted).
* Chunked prefill: each iteration has a budget of ``chunk_tokens`` tokens; decodes take one
  each, prompts in prefill take the rest in order (``perf.mixed_iteration_time_s``).
* Roles: ``colocated`` does all of the above; ``prefill`` (PD) only prefills and holds the KV
  until the engine releases it after the transfer; ``decode`` (PD) gets requests whose KV
  arrived (reserved at transfer start) and joins them with no prefill.
"""

from __future__ import annotations

import heapq
from collections import deque
from typing import Any

__all__ = ["COLOCATED", "DECODE", "PREFILL", "Replica", "RequestState"]

COLOCATED, PREFILL, DECODE = 0, 1, 2
IDLE, PHASE_PREFILL, PHASE_DECODE, PHASE_MIXED = 0, 1, 2, 3
_heappush, _heappop = heapq.heappush, heapq.heappop


class RequestState:
    """Per-request columns as Python lists (fast scalar access in the hot path).

    ``gen`` is the generated count at the last join/preemption/finish; ``status`` is 0
    pending, 1 finished, 2 rejected; times are -1 until set.
    """

    __slots__ = ("blocks", "cached", "drep", "gen", "held", "join_d", "npre", "output", "prompt", "rep",
                 "status", "t_admit", "t_first", "t_kv", "t_last")

    def __init__(self, prompt: list[int], output: list[int], blocks: list[Any] | None = None) -> None:
        n = len(prompt)
        self.prompt = prompt
        self.output = output
        self.blocks = blocks
        self.gen = [0] * n
        self.join_d = [0] * n
        self.held = [0] * n
        self.npre = [0] * n
        self.cached = [0] * n
        self.rep = [-1] * n
        self.drep = [-1] * n
        self.t_admit = [-1.0] * n
        self.t_first = [-1.0] * n
        self.t_last = [-1.0] * n
        self.t_kv = [-1.0] * n
        self.status = bytearray(n)


class Replica:
    """A replica's batch state machine; the engine calls :meth:`enqueue`, :meth:`deliver`,
    :meth:`on_event` and :meth:`release`, and the replica calls back ``engine.schedule``,
    ``engine.finished`` and (prefill role) ``engine.prefilled``."""

    __slots__ = (
        "D", "E", "W", "Wr", "acc_b", "acc_busy", "acc_kv", "acc_q", "active", "alloc", "alloc_s", "batch_tokens",
        "bin_end", "bin_start", "busy_decode_s", "busy_mixed_s", "busy_prefill_s", "cache", "cache_idx", "cap", "cards", "chunk",
        "chunked", "cp", "ctx", "down", "fin", "inflight", "k_plan", "kv", "local", "max_seqs", "nadm",
        "nrun", "on_since", "pending", "perf", "pf", "phase", "pool", "rid", "role", "rs", "running", "t0",
        "t_end", "tl", "upfront", "version", "warm_token", "warming", "wm", "xq",
    )

    def __init__(self, engine: Any, rid: int, pool: Any, local: int, role: int, perf: Any,
                 rs: RequestState, *, max_batch_tokens: int, max_batch_seqs: int, chunked: bool,
                 chunk_tokens: int, upfront: bool, watermark: float, cache: Any = None) -> None:
        self.E = engine
        self.rid = rid
        self.pool = pool
        self.local = local
        self.role = role
        self.perf = perf
        self.rs = rs
        self.cap = int(perf.kv_capacity_tokens)
        self.batch_tokens = max_batch_tokens
        self.max_seqs = max_batch_seqs
        self.chunked = chunked and role == COLOCATED
        self.chunk = chunk_tokens
        self.upfront = upfront
        self.wm = int(watermark * self.cap) if not upfront else 0
        self.cache = cache
        self.cache_idx = local
        self.W: deque[int] = deque()   # waiting, needs prefill
        self.Wr: deque[int] = deque()  # decode role: KV arrived, joins without prefill
        self.running: dict[int, int] = {}
        self.fin: list[tuple[int, int, int]] = []
        self.pf: list[tuple[int, int, int]] = []   # current prefill iteration: (req, new, cached)
        self.cp: list[list[int]] = []              # chunked: [req, done, total_new, cached]
        self.alloc: list[tuple[list[int], int]] = []
        self.D = 0
        self.nadm = 0
        self.ctx = 0
        self.kv = 0
        self.nrun = 0
        self.inflight = 0
        self.pending = 0
        self.phase = IDLE
        self.t0 = 0.0
        self.t_end = 0.0
        self.k_plan = 0
        self.version = 0
        self.active = True       # routable
        self.warming = False
        self.down = False        # failed, its replacement loading (engine/serving/faults.py)
        self.warm_token = 0      # identifies the current warm-up (a stale activation is ignored)
        self.on_since = 0.0      # cards allocated since (when active or warming)
        self.alloc_s = 0.0       # allocated seconds before on_since
        self.cards: Any = None   # card ids (numpy) once placed
        self.xq: deque[tuple[int, Any]] = deque()  # decode role: transfers waiting for KV room
        self.busy_prefill_s = 0.0
        self.busy_decode_s = 0.0
        self.busy_mixed_s = 0.0
        self.tl = 0.0
        self.bin_start = 0.0
        self.bin_end = engine.bin_width_at(0.0)
        self.acc_b = self.acc_q = self.acc_kv = self.acc_busy = 0.0

    # ---- levels ---------------------------------------------------------------------------
    def note(self, t: float) -> None:
        """Accumulate the time-weighted levels held since the last change up to ``t``."""
        tl = self.tl
        if t <= tl:
            return
        b = self.nrun + len(self.pf) + len(self.cp)
        q = len(self.W) + len(self.Wr)
        kv = self.kv
        busy = 1.0 if self.phase else 0.0
        while t >= self.bin_end:
            end = self.bin_end
            dt = end - tl
            self.E.tl_rows.append((self.rid, self.bin_start, end, self.acc_b + b * dt, self.acc_q + q * dt,
                                   self.acc_kv + kv * dt, self.acc_busy + busy * dt))
            self.acc_b = self.acc_q = self.acc_kv = self.acc_busy = 0.0
            tl = self.bin_start = end
            self.bin_end = end + self.E.bin_width_at(end)
        dt = t - tl
        self.acc_b += b * dt
        self.acc_q += q * dt
        self.acc_kv += kv * dt
        self.acc_busy += busy * dt
        self.tl = t

    def publish(self) -> None:
        """Copy the load figures routers see into the pool's arrays."""
        i = self.local
        p = self.pool
        p.q[i] = len(self.W) + len(self.Wr)
        p.run[i] = self.nrun + len(self.pf) + len(self.cp)
        p.kvu[i] = self.kv
        p.pend[i] = self.pending

    # ---- engine entry points --------------------------------------------------------------
    def enqueue(self, r: int, t: float) -> None:
        """A request routed here at ``t`` (needs a prefill)."""
        self.note(t)
        self.W.append(r)
        self.pending += self.rs.prompt[r]
        if self.phase == IDLE:
            self.E.schedule(self, t)  # after every arrival at t (equal times: arrivals first)
        elif self.phase == PHASE_DECODE and len(self.W) == 1 and self.role != PREFILL:
            self._maybe_cut(t, False)
        self.publish()

    def deliver(self, r: int, t: float) -> None:
        """Decode role: request ``r``'s KV arrived at ``t`` (its KV was reserved by :meth:`reserve`)."""
        self.note(t)
        self.inflight -= 1
        self.rs.t_kv[r] = t
        self.Wr.append(r)
        if self.phase == IDLE:
            self.E.schedule(self, t)
        elif self.phase == PHASE_DECODE and len(self.Wr) == 1:
            self._maybe_cut(t, True)
        self.publish()

    def can_reserve(self, r: int) -> bool:
        """Decode role: is there KV room to receive request ``r`` now?"""
        rs = self.rs
        if self.upfront:
            return self.kv + rs.prompt[r] + rs.output[r] <= self.cap
        need = rs.prompt[r] + rs.gen[r] + self.nrun + len(self.Wr) + self.inflight + 1
        return self.kv + need <= self.cap - self.wm

    def reserve(self, r: int, t: float) -> None:
        """Decode role: reserve KV for request ``r`` (its transfer starts now)."""
        self.note(t)
        rs = self.rs
        res = rs.prompt[r] + (rs.output[r] if self.upfront else rs.gen[r])
        rs.held[r] = res
        self.kv += res
        self.inflight += 1
        self.publish()

    def release(self, r: int, t: float) -> None:
        """Prefill role: request ``r``'s KV left (transfer done, or it finished at prefill)."""
        self.note(t)
        self.kv -= self.rs.prompt[r]
        if self.phase == IDLE and self.W:
            self.E.schedule(self, t)
        self.publish()

    def on_event(self, t: float) -> None:
        """The planned iteration(s) ended at ``t``: apply them, then plan the next."""
        self.note(t)
        ph = self.phase
        if ph == PHASE_DECODE:
            self._advance(self.k_plan, t)
            self.busy_decode_s += t - self.t0
        elif ph == PHASE_PREFILL:
            self.busy_prefill_s += t - self.t0
            self._prefilled(t)
        elif ph == PHASE_MIXED:
            self.busy_mixed_s += t - self.t0
            self._mixed_done(t)
        self.phase = IDLE
        self.plan(t)
        self.publish()

    # ---- planning -------------------------------------------------------------------------
    def plan(self, t: float) -> None:
        """At an iteration boundary ``t``: admit, then start a prefill, a mixed iteration or a
        decode stretch (or go idle)."""
        if self.chunked:
            self._plan_chunked(t)
            return
        if self.Wr:
            self._join_ready()
        if self.W and self._admit(t):
            pf = self.pf
            tokens = 0
            pairs = 0.0
            for _, new, c in pf:
                tokens += new
                pairs += new * new * 0.5 + new * c
            self.phase = PHASE_PREFILL
            self.t0 = t
            self.t_end = t + self.perf.prefill_time_s(tokens, pairs)
            self.E.schedule(self, self.t_end)
            return
        if self.nrun:
            self._start_stretch(t)
        else:
            self.phase = IDLE

    def _start_stretch(self, t: float) -> None:
        if not self.upfront and self.kv + self.nrun > self.cap:
            self._preempt()
            if not self.nrun:
                self.phase = IDLE
                if self.W or self.Wr:
                    self.plan(t)
                return
        fin = self.fin
        running = self.running
        while running.get(fin[0][1]) != fin[0][2]:
            _heappop(fin)
        k = fin[0][0] - self.D
        if not self.upfront:
            kk = (self.cap - self.kv) // self.nrun
            if kk < k:
                k = kk
        self.phase = PHASE_DECODE
        self.k_plan = k
        self.t0 = t
        self.t_end = t + self.perf.decode_stretch_s(self.nrun, self.ctx, k)
        self.E.schedule(self, self.t_end)

    def _join(self, r: int) -> None:
        rs = self.rs
        g = rs.gen[r]
        self.nadm += 1
        self.running[self.nadm] = r
        rs.join_d[r] = self.D
        _heappush(self.fin, (self.D + rs.output[r] - g, self.nadm, r))
        self.nrun += 1
        self.ctx += rs.prompt[r] + g

    def _join_ready(self) -> None:
        Wr = self.Wr
        held = self.rs.held
        while Wr and self.nrun < self.max_seqs:
            r = Wr.popleft()
            held[r] = 0
            self._join(r)

    def _fits(self, r: int, seqs: int, kv: int) -> int:
        """KV tokens to reserve for admitting ``r`` next to ``seqs`` requests, or -1 if no room."""
        rs = self.rs
        if self.role == PREFILL:
            res = rs.prompt[r]
            return res if kv + res <= self.cap else -1
        if self.upfront:
            res = rs.prompt[r] + rs.output[r]
            return res if kv + res <= self.cap else -1
        res = rs.prompt[r] + rs.gen[r] + 1
        return res if kv + res + seqs + 1 <= self.cap - self.wm else -1

    def _new_tokens(self, r: int) -> tuple[int, int]:
        """(tokens to prefill, tokens served from the prefix cache) if ``r`` were admitted now."""
        rs = self.rs
        total = rs.prompt[r] + rs.gen[r]
        cache = self.cache
        if cache is None or rs.blocks is None:
            return total, 0
        hashes = rs.blocks[r]
        if hashes is None or not len(hashes):
            return total, 0
        c = min(cache.leading_hits(self.cache_idx, hashes) * self.E.block_tokens, total - 1)
        return total - c, c

    def _took(self, r: int, c: int, t: float) -> None:
        """Bookkeeping of admitting ``r`` at ``t`` with ``c`` cached tokens."""
        rs = self.rs
        self.pending -= rs.prompt[r]
        if rs.t_admit[r] < 0.0:
            rs.t_admit[r] = t
        if self.cache is not None and rs.blocks is not None and rs.blocks[r] is not None:
            self.cache.use(self.cache_idx, rs.blocks[r])
            if c > rs.cached[r]:
                rs.cached[r] = c

    def _admit(self, t: float) -> bool:
        """Non-chunked admission into ``self.pf``; True if anything was admitted."""
        W = self.W
        pf = self.pf
        seqs = self.nrun if self.role != PREFILL else 0
        tokens = 0
        kv = self.kv
        while W and seqs < self.max_seqs:
            r = W[0]
            res = self._fits(r, seqs, kv)
            if res < 0:
                break
            new, c = self._new_tokens(r)
            if pf and tokens + new > self.batch_tokens:
                break
            W.popleft()
            kv += res
            tokens += new
            seqs += 1
            pf.append((r, new, c))
            self._took(r, c, t)
        self.kv = kv
        return bool(pf)

    def _prefilled(self, t: float) -> None:
        rs = self.rs
        gen, out = rs.gen, rs.output
        for r, _, _ in self.pf:
            g = gen[r] + 1
            gen[r] = g
            if rs.t_first[r] < 0.0:
                rs.t_first[r] = t
            if self.role == PREFILL:
                self.E.prefilled(self, r, t)
            elif g >= out[r]:
                self.kv -= rs.prompt[r] + out[r]
                rs.t_last[r] = t
                self.E.finished(r, t)
            else:
                self._join(r)
        self.pf = []

    def _advance(self, k: int, t: float) -> None:
        """Apply ``k`` decode iterations ending at ``t`` and retire finished requests."""
        if k <= 0:
            return
        n = self.nrun
        D = self.D + k
        self.D = D
        self.ctx += n * k
        if not self.upfront:
            self.kv += n * k
        fin = self.fin
        running = self.running
        rs = self.rs
        while fin and fin[0][0] <= D:
            _, adm, r = _heappop(fin)
            if running.get(adm) != r:
                continue
            del running[adm]
            self.nrun -= 1
            size = rs.prompt[r] + rs.output[r]
            self.ctx -= size
            self.kv -= size
            rs.gen[r] = rs.output[r]
            rs.t_last[r] = t
            self.E.finished(r, t)

    def _preempt(self) -> None:
        """Preempt the newest requests until one more iteration fits in KV (recompute later)."""
        rs = self.rs
        while self.nrun and self.kv + self.nrun > self.cap:
            _, r = self.running.popitem()
            g = rs.gen[r] + self.D - rs.join_d[r]
            rs.gen[r] = g
            size = rs.prompt[r] + g
            self.kv -= size
            self.ctx -= size
            self.nrun -= 1
            rs.npre[r] += 1
            self.W.appendleft(r)
            self.pending += rs.prompt[r]

    def _maybe_cut(self, t: float, ready: bool) -> None:
        """An admissible arrival during a decode stretch: end the stretch at the next boundary.

        The boundary is the first ``j`` with ``t0 + S(j) >= t`` (``S`` = stretch time of ``j``
        iterations); the arrival is admitted there iff it would be by the iteration loop.
        """
        n = self.nrun
        if n >= self.max_seqs:
            return
        if not ready:
            if self.chunked and self.chunk - n <= 0:
                return
            if self.upfront and self._fits(self.W[0], n + len(self.cp), self.kv) < 0:
                return
        perf = self.perf
        ctx, t0 = self.ctx, self.t0
        k = perf.decode_iterations_within(n, ctx, t - t0)
        if k >= self.k_plan:
            return
        sk = perf.decode_stretch_s(n, ctx, k) if k else 0.0
        if t0 + sk >= t:
            j, end = k, t0 + sk
        else:
            j = k + 1
            if j >= self.k_plan:
                return
            end = t0 + perf.decode_stretch_s(n, ctx, j)
        if not ready and not self.upfront and self._fits(self.W[0], n + len(self.cp), self.kv + n * j) < 0:
            return
        self.k_plan = j
        self.t_end = end
        self.E.schedule(self, end)

    # ---- chunked prefill ------------------------------------------------------------------
    def _plan_chunked(self, t: float) -> None:
        budget = self.chunk - self.nrun
        alloc = self.alloc
        ptok = 0
        pairs = 0.0
        if budget > 0:
            for e in self.cp:
                take = min(e[2] - e[1], budget - ptok)
                if take <= 0:
                    break
                alloc.append((e, take))
                ptok += take
                pairs += take * take * 0.5 + take * (e[3] + e[1])
            W = self.W
            while W and ptok < budget and self.nrun + len(self.cp) < self.max_seqs:
                r = W[0]
                res = self._fits(r, self.nrun + len(self.cp), self.kv)
                if res < 0:
                    break
                new, c = self._new_tokens(r)
                W.popleft()
                self.kv += res
                self._took(r, c, t)
                e = [r, 0, new, c]
                self.cp.append(e)
                take = min(new, budget - ptok)
                alloc.append((e, take))
                ptok += take
                pairs += take * take * 0.5 + take * c
        if ptok:
            if not self.upfront and self.kv + self.nrun > self.cap:
                self._preempt()
            self.phase = PHASE_MIXED
            self.t0 = t
            self.t_end = t + self.perf.mixed_iteration_time_s(ptok, self.nrun, self.ctx, pairs)
            self.E.schedule(self, self.t_end)
        elif self.nrun:
            self._start_stretch(t)
        else:
            self.phase = IDLE

    def _mixed_done(self, t: float) -> None:
        self._advance(1 if self.nrun else 0, t)
        rs = self.rs
        done = []
        for e, take in self.alloc:
            e[1] += take
            if e[1] >= e[2]:
                done.append(e)
        self.alloc = []
        for e in done:
            self.cp.remove(e)
            r = e[0]
            g = rs.gen[r] + 1
            rs.gen[r] = g
            if rs.t_first[r] < 0.0:
                rs.t_first[r] = t
            if g >= rs.output[r]:
                self.kv -= rs.prompt[r] + rs.output[r]
                rs.t_last[r] = t
                self.E.finished(r, t)
            else:
                self._join(r)
