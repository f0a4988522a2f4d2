"""Serving replica failures: when a replica fails, what happens to its requests, and its return.

Each replica fails as an independent exponential (Poisson) process while it is on, at rate
``1 / replica_mtbf`` when given, else ``cards / card_mtbf + nodes / node_mtbf`` over the cards it
holds and the nodes they sit on (a uniformly hit card or node of the cluster, restricted to the
replica's own). Times come from the run's ``"failures.serving"`` stream only, so enabling
failures never shifts the arrival or length draws.

At a failure at ``t`` the replica's KV state is lost and every request bound to it is
*in flight*: waiting in its queue, prefilling, decoding, and in PD also the requests whose KV
is moving to (or waiting for room on) a failed decode replica, and those whose KV a failed
prefill replica still holds for a transfer. With ``on_failure: requeue`` they are routed again
at ``t`` (in arrival order) to the service's entry pool, keep the tokens already streamed (like
a vLLM preemption with recompute) and pay a prefill of ``prompt + generated`` tokens again; with
``drop`` they end with status ``dropped`` (an SLO miss). The replica is down (not routable, not
started by the autoscaler, counted as provisioned) until its replacement has loaded the model,
``model_load`` seconds later: ``weight bytes per card / load bandwidth per card + start-up``
unless given. Failure events are rare; nothing here runs per request or per iteration.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...errors import ClusterSimError, ConfigError
from .replica import DECODE, PHASE_DECODE, PHASE_PREFILL, PREFILL

__all__ = ["DEFAULT_LOAD_GBYTE_PER_S_PER_CARD", "DEFAULT_STARTUP_S", "FaultState", "ReplicaFaults"]

DEFAULT_LOAD_GBYTE_PER_S_PER_CARD = 6.25
"""Weight read bandwidth per card, GB/s: 50 GB/s per 8-card node (a DGX A100's two 200 Gb/s
storage NICs, the pool policies' ``storage_gbyte_per_s_per_node`` default, docs/pool.md) / 8."""
DEFAULT_STARTUP_S = 30.0
"""Fixed part of a replacement's start (detection, process and engine start, CUDA-graph capture
and warm-up): a documented knob (``failures.serving.startup``); vLLM-class servers take tens of
seconds beyond reading the weights."""

ON_FAILURE = ("requeue", "drop")
STALL_FAILURES = 100
"""Progress guard of a drain run (no horizon): this many failures per replica in a row without
any request ending is an error (the run could re-queue forever), not a hang."""


@dataclass(frozen=True)
class ReplicaFaults:
    """How serving replicas fail and come back (engine input; built from ``failures.serving``).

    Parameters
    ----------
    replica_mtbf_s : float, optional
        Mean time between failures of one replica; None: from ``card_mtbf_s``/``node_mtbf_s``.
    card_mtbf_s, node_mtbf_s : float, optional
        Per-card / per-node MTBF (the ``failures`` section's); a replica fails at
        ``cards / card_mtbf + nodes / node_mtbf``.
    on_failure : str
        ``requeue`` (default) or ``drop`` the failed replica's in-flight requests.
    model_load_s : float, optional
        Seconds until the replacement serves; None (``auto``): weight bytes per card over
        ``load_gbyte_per_s_per_card`` plus ``startup_s``.
    load_gbyte_per_s_per_card, startup_s : float
        The ``auto`` model load's bandwidth and fixed start-up.
    rng : numpy.random.Generator, optional
        The ``failures.serving`` stream (default: seed 0's).
    """

    replica_mtbf_s: float | None = None
    card_mtbf_s: float | None = None
    node_mtbf_s: float | None = None
    on_failure: str = "requeue"
    model_load_s: float | None = None
    load_gbyte_per_s_per_card: float = DEFAULT_LOAD_GBYTE_PER_S_PER_CARD
    startup_s: float = DEFAULT_STARTUP_S
    rng: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        w = "failures.serving"
        for name, key in (("replica_mtbf_s", "replica_mtbf"), ("card_mtbf_s", "card_mtbf"),
                          ("node_mtbf_s", "node_mtbf")):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, (int, float)) and v > 0 and math.isfinite(v)):
                raise ConfigError(f"{w if key == 'replica_mtbf' else 'failures'}.{key}: must be > 0 s, got {v!r}")
        if self.on_failure not in ON_FAILURE:
            raise ConfigError(f"{w}.on_failure: 'requeue' or 'drop', got {self.on_failure!r}")
        if self.model_load_s is not None and not (self.model_load_s >= 0 and math.isfinite(self.model_load_s)):
            raise ConfigError(f"{w}.model_load: must be >= 0 s or auto, got {self.model_load_s!r}")
        if not self.load_gbyte_per_s_per_card > 0:
            raise ConfigError(f"{w}.load_gbyte_per_s_per_card: must be > 0, got {self.load_gbyte_per_s_per_card!r}")
        if not self.startup_s >= 0:
            raise ConfigError(f"{w}.startup: must be >= 0 s, got {self.startup_s!r}")

    @property
    def active(self) -> bool:
        """True when replicas can fail."""
        return self.replica_mtbf_s is not None or self.card_mtbf_s is not None or self.node_mtbf_s is not None

    def rate(self, cards: int, nodes: int) -> float:
        """Failures per second of one replica on ``cards`` cards over ``nodes`` nodes."""
        if self.replica_mtbf_s is not None:
            return 1.0 / self.replica_mtbf_s
        rc = cards / self.card_mtbf_s if self.card_mtbf_s else 0.0
        rn = nodes / self.node_mtbf_s if self.node_mtbf_s else 0.0
        return rc + rn

    def load_s(self, perf: Any) -> float:
        """Seconds from a failure until the replacement of a replica with ``perf`` serves."""
        if self.model_load_s is not None:
            return float(self.model_load_s)
        per_card = float(getattr(perf, "weight_bytes_per_card", 0.0))
        return per_card / (self.load_gbyte_per_s_per_card * 1e9) + self.startup_s


class FaultState:
    """The failure process of one engine's replicas and its counters (engine-owned).

    The engine pushes two event kinds for it (``K_FAIL``, ``K_RECOVER``) and calls
    :meth:`on_event`; everything else is here. Counters per service: ``failures``,
    ``requeued``, ``dropped``, ``down_s``; :attr:`events`: ``(t, replica, kind, requests)``
    with kind ``fail`` or ``recover``.
    """

    def __init__(self, engine: Any, spec: ReplicaFaults, k_fail: int, k_recover: int) -> None:
        self.E = engine
        self.spec = spec
        self.K_FAIL, self.K_RECOVER = k_fail, k_recover
        self.rng = spec.rng if spec.rng is not None else np.random.Generator(
            np.random.PCG64(np.random.SeedSequence([0, 0])))
        self.rates: list[float] = []
        self.loads: list[float] = []
        self.fail_token: list[int] = []
        self.down_since: list[float] = []
        n = len(engine.services)
        self.counts = {k: [0] * n for k in ("failures", "requeued", "dropped")}
        self.down_s = [0.0] * n
        self.events: list[tuple[float, int, str, int]] = []
        self.hit: list[int] = []   # ids of the requests in flight at a failure (once per failure)
        self.purged = False
        self._seen_ended = -1   # progress guard: ended requests at the last failure
        self._stalled = 0       # failures since a request last ended

    # ---- set-up ---------------------------------------------------------------------------
    def start(self) -> None:
        """Rates and load times of every replica; the first failure time of each."""
        E, spec = self.E, self.spec
        node = getattr(E.topology, "node", None) if E.topology is not None else None
        for rep in E.replicas:
            if rep.pool.spec.slices > 1:
                raise ConfigError("failures.serving: sliced deployments (several replicas per card) are not "
                                  "modelled: a card's failure would take all its slices at once")
            cards = len(rep.cards) if rep.cards is not None else 1
            nodes = int(np.unique(np.asarray(node)[rep.cards]).size) if node is not None and cards else 1
            self.rates.append(spec.rate(cards, nodes))
            self.loads.append(spec.load_s(rep.perf))
            self.fail_token.append(0)
            self.down_since.append(math.nan)
        for rep in E.replicas:
            self._draw(rep, 0.0)

    def _draw(self, rep: Any, t: float) -> None:
        lam = self.rates[rep.rid]
        if lam <= 0.0:
            return
        self.fail_token[rep.rid] += 1
        self.E._push(t + float(self.rng.exponential(1.0 / lam)), self.K_FAIL, rep, self.fail_token[rep.rid])

    def idle(self) -> bool:
        """Nothing left to fail for: a drain run (no horizon) whose requests have all ended."""
        E = self.E
        return not math.isfinite(E.horizon) and E.nfinished >= E.n_live

    def purge(self) -> None:
        """Drop the pending fault events (once every request of a drain run has ended)."""
        if self.purged:
            return
        self.purged = True
        heap = self.E.heap
        heap[:] = [e for e in heap if e[1] not in (self.K_FAIL, self.K_RECOVER)]
        heapq.heapify(heap)

    # ---- events ---------------------------------------------------------------------------
    def on_event(self, kind: int, rep: Any, ver: int, t: float) -> bool:
        """Handle a fault event at ``t``; False if it was stale or past the end (ignored)."""
        if kind == self.K_FAIL:
            if ver != self.fail_token[rep.rid]:
                return False
            if self.idle():
                self.purge()
                return False
            if rep.down or not (rep.active or rep.warming):   # off: thinning (memoryless), redraw
                self._draw(rep, t)
                return True
            self._fail(rep, t)
            return True
        if self.idle():
            self.purge()
            return False
        self._recover(rep, ver, t)
        return True

    def _fail(self, rep: Any, t: float) -> None:
        E = self.E
        k = rep.pool.service
        if E.nfinished != self._seen_ended:
            self._seen_ended, self._stalled = E.nfinished, 0
        self._stalled += 1
        if self._stalled > STALL_FAILURES * len(E.replicas) and not math.isfinite(E.horizon):
            raise ClusterSimError(
                f"failures.serving: {self._stalled} replica failures in a row with no request ending "
                f"(t = {t:.6g} s, {E.n_live - E.nfinished} requests left): replicas fail faster than they "
                f"serve; raise replica_mtbf or set the experiment duration")
        lost = collect_inflight(E, rep, t)
        self.hit += lost
        self.counts["failures"][k] += 1
        self.events.append((t, rep.rid, "fail", len(lost)))
        rep.down = True
        rep.active = False
        if not rep.warming:
            rep.warming = True
        rep.warm_token += 1
        rep.pool.refresh()
        self.down_since[rep.rid] = t
        E._push(t + self.loads[rep.rid], self.K_RECOVER, rep, rep.warm_token)
        if self.spec.on_failure == "drop":
            for r in lost:
                E.rs.status[r] = 3
                E.nfinished += 1   # ended (the drain and tick loops count ended requests)
            self.counts["dropped"][k] += len(lost)
        else:
            self.counts["requeued"][k] += len(lost)
            requeue(E, k, lost, t)

    def _recover(self, rep: Any, ver: int, t: float) -> None:
        E = self.E
        rep.note(t)
        if rep.down:
            rep.down = False
            self.down_s[rep.pool.service] += t - self.down_since[rep.rid]
            self.down_since[rep.rid] = math.nan
        self.events.append((t, rep.rid, "recover", 0))
        if rep.warming and ver == rep.warm_token:
            rep.warming = False
            rep.active = True
            rep.pool.refresh()
            E._unpark(rep.pool, t)
            E.unpark_handoffs(rep.pool, t)
        self._draw(rep, t)

    def close(self, end: float) -> dict[str, Any]:
        """Counters at ``end`` (replicas still down are counted down until ``end``)."""
        down = list(self.down_s)
        for rep in self.E.replicas:
            s = self.down_since[rep.rid]
            if rep.down and not math.isnan(s):
                down[rep.pool.service] += max(0.0, end - s)
        return {"failures": list(self.counts["failures"]), "requeued": list(self.counts["requeued"]),
                "dropped": list(self.counts["dropped"]), "down_s": down, "events": list(self.events),
                "hit": np.asarray(self.hit, dtype=np.int64),
                "on_failure": self.spec.on_failure, "model_load_s": list(self.loads), "rates": list(self.rates)}


def collect_inflight(E: Any, rep: Any, t: float) -> list[int]:
    """Empty ``rep`` (its KV state is lost) and return the requests bound to it, sorted by id.

    Colocated or prefill: queued, prefilling (chunked too) and decoding requests; a prefill
    replica's finished prompts whose KV waits on a decode replica's transfer queue or is moving
    (those transfers are cancelled and the decode side's reservation freed). Decode: requests
    whose KV arrived, is moving or is due (deliveries), and those waiting to transfer to it
    (their prefill replica frees the KV).
    """
    rs = E.rs
    rep.note(t)
    ph = rep.phase
    if ph:   # the iteration in progress: busy until now; decode iterations done so far count
        dt = max(0.0, t - rep.t0)
        if ph == PHASE_DECODE:
            rep.busy_decode_s += dt
            if rep.nrun:
                k = min(rep.perf.decode_iterations_within(rep.nrun, rep.ctx, dt), rep.k_plan - 1)
                rep.D += max(k, 0)
        elif ph == PHASE_PREFILL:
            rep.busy_prefill_s += dt
        else:
            rep.busy_mixed_s += dt
    lost: list[int] = list(rep.W) + list(rep.Wr)
    for r in rep.running.values():
        rs.gen[r] = rs.gen[r] + rep.D - rs.join_d[r]
        lost.append(r)
    lost += [r for r, _, _ in rep.pf] + [e[0] for e in rep.cp]
    net = E.net
    if rep.role == DECODE:
        lost += [r for r, _ in rep.xq]
        for r, prep in rep.xq:
            prep.release(r, t)
        if net is not None:
            for r, prep, _drep in net.cancel(t, lambda p: p[2] is rep):
                prep.release(r, t)
                lost.append(r)
        lost += _cancel_deliveries(E, rep)
    elif rep.role == PREFILL:
        for pool, waiting in E.handoffs.items():   # prefilled, every decode replica down
            lost += [r for r, p in waiting if p is rep]
            E.handoffs[pool] = [(r, p) for r, p in waiting if p is not rep]
        for d in E.replicas:
            if d.xq and any(p is rep for _, p in d.xq):
                keep = [(r, p) for r, p in d.xq if p is not rep]
                lost += [r for r, p in d.xq if p is rep]
                d.xq.clear()
                d.xq.extend(keep)
        if net is not None:
            for r, _prep, drep in net.cancel(t, lambda p: p[1] is rep):
                drep.note(t)
                drep.kv -= rs.held[r]
                drep.inflight -= 1
                rs.held[r] = 0
                drep.publish()
                lost.append(r)
        for d in E.replicas:   # their freed reservations may let queued transfers start
            if d.xq:
                E._try_transfers(d, t)
    if net is not None and net.next_t < math.inf:
        E._push(net.next_t, E.K_NET, net, net.version)
    for r in lost:
        rs.held[r] = 0
    rep.W.clear()
    rep.Wr.clear()
    rep.xq.clear()
    rep.running.clear()
    rep.fin.clear()
    rep.pf = []
    rep.cp = []
    rep.alloc = []
    rep.kv = rep.ctx = rep.nrun = rep.pending = rep.inflight = 0
    rep.phase = 0
    rep.version += 1   # its planned event is stale
    if rep.cache is not None:
        rep.cache.clear(rep.cache_idx)
    rep.publish()
    return sorted(set(lost))


def _cancel_deliveries(E: Any, rep: Any) -> list[int]:
    """Remove the KV deliveries due at ``rep`` from the engine's heap; their requests."""
    heap = E.heap
    gone = [e for e in heap if e[1] == E.K_DELIVER and e[3][1] is rep]
    if gone:
        heap[:] = [e for e in heap if not (e[1] == E.K_DELIVER and e[3][1] is rep)]
        heapq.heapify(heap)
    return [e[3][0] for e in gone]


def requeue(E: Any, k: int, lost: list[int], t: float) -> None:
    """Route service ``k``'s ``lost`` requests again at ``t`` to its entry pool, in id order."""
    pool = E.entry[k]
    rs = E.rs
    for r in lost:
        rs.drep[r] = -1
        pool.arrivals -= 1   # counted when it first arrived
        rep = E._route(pool, r, t)
        if rep is not None:
            rs.rep[r] = rep.rid
            rep.enqueue(r, t)
