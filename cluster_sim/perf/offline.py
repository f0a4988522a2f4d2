"""Run time of an offline (batch) inference job, in closed form from the serving perf model.

An offline job processes ``requests`` requests of ``prompt`` prompt and ``output`` output tokens
on ``replicas`` independent replicas (one :class:`~cluster_sim.perf.inference.ReplicaPerf` each).
Requests are split over the replicas as evenly as possible (``ceil`` or ``floor`` of
``requests / replicas`` each); a replica runs its share in consecutive batches of ``B``
requests (the last one smaller), ``B = min(max_batch_seqs, kv_capacity // (prompt + output),
requests)``: the largest batch whose KV (reserved up front, as the serving engine's ``on_kv_full:
wait``) fits. One batch of ``b`` requests takes

``T(b) = m P(k) + P(b - m k) + decode_stretch_s(b, b (prompt + 1), output - 1)``

where ``k = max(1, max_batch_tokens // prompt)`` prompts share a prefill iteration, ``m = b // k``
and ``P(j) = prefill_time_s(j prompt, j causal_pairs(prompt))`` (0 for ``j = 0``). The prefill
yields each request's first token; the ``output - 1`` decode iterations run at batch ``b`` with
the context growing by ``b`` per iteration (the perf model's closed-form stretch: no loop per
token). The job's duration is that of its busiest replica: ``n T(B) + T(r)`` with ``n, r =
divmod(ceil(requests / replicas), B)``. docs/inference_model.md, "Offline batch jobs".

>>> from cluster_sim.perf.inference import ReplicaPerf
>>> s = offline_schedule(ReplicaPerf("llama2-13b", "a100-80gb"), requests=1000, prompt=512,
...                      output=128, replicas=2)
>>> s.batch, s.full_batches, s.last_batch   # KV room for 105 of 640 tokens; 500 per replica
(105, 4, 80)
>>> s.processed(0.0), s.processed(s.batch_s), s.processed(s.duration_s)
(0, 210, 1000)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import ConfigError
from .base import ReplicaPerfModel
from .inference import causal_pairs

__all__ = ["OfflineSchedule", "batch_time_s", "largest_batch", "offline_schedule"]


def batch_time_s(perf: ReplicaPerfModel, batch: int, prompt: int, output: int,
                 max_batch_tokens: int = 8192) -> float:
    """Seconds for one replica to run one batch of ``batch`` requests start to finish (``T(b)``)."""
    if batch <= 0:
        return 0.0
    k = max(1, max_batch_tokens // prompt)
    m, rest = divmod(batch, k)
    pairs = causal_pairs(prompt)
    full = perf.prefill_time_s(k * prompt, k * pairs) if m else 0.0
    tail = perf.prefill_time_s(rest * prompt, rest * pairs) if rest else 0.0
    return m * full + tail + perf.decode_stretch_s(batch, batch * (prompt + 1), output - 1)


def largest_batch(perf: ReplicaPerfModel, prompt: int, output: int, max_batch_seqs: int,
                  requests: int | None = None) -> int:
    """``B``: the most requests of ``prompt + output`` tokens whose KV fits one replica, at most
    ``max_batch_seqs`` (and ``requests``). Raises ConfigError when not even one fits."""
    fit = perf.kv_capacity_tokens // (prompt + output)
    if fit < 1:
        raise ConfigError(f"prompt_tokens + output_tokens = {prompt + output:,} tokens do not fit the "
                          f"replica's KV cache ({perf.kv_capacity_tokens:,} tokens)")
    b = min(fit, max_batch_seqs)
    return b if requests is None else max(1, min(b, requests))


@dataclass(frozen=True)
class OfflineSchedule:
    """How an offline job runs on its replicas (all times in seconds on the reference cards).

    ``batch`` is ``B``, ``batch_s`` ``T(B)``; the busiest replica runs ``full_batches`` batches of
    ``B`` and one of ``last_batch`` (may be 0) in ``duration_s``.
    """

    requests: int
    replicas: int
    batch: int
    batch_s: float
    full_batches: int
    last_batch: int
    duration_s: float

    def processed(self, work_s: float) -> int:
        """Requests finished after ``work_s`` seconds of progress: every replica has finished
        ``floor(work_s / batch_s)`` full batches (capped by its share); all of them at the end."""
        if work_s >= self.duration_s:
            return self.requests
        # (a batch boundary reached through ``duration - remaining`` may be a few ulps short)
        done = math.floor(max(work_s, 0.0) / self.batch_s + 1e-9) * self.batch
        hi = -(-self.requests // self.replicas)
        n_hi = self.requests - (hi - 1) * self.replicas  # replicas with the larger share
        return n_hi * min(done, hi) + (self.replicas - n_hi) * min(done, hi - 1)


def offline_schedule(perf: ReplicaPerfModel, *, requests: int, prompt: int, output: int, replicas: int,
                     max_batch_seqs: int = 256, max_batch_tokens: int = 8192) -> OfflineSchedule:
    """The :class:`OfflineSchedule` of ``requests`` requests on ``replicas`` replicas like ``perf``."""
    for name, v in (("requests", requests), ("prompt_tokens", prompt), ("output_tokens", output),
                    ("replicas", replicas), ("max_batch", max_batch_seqs), ("max_batch_tokens", max_batch_tokens)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(f"{name}: must be a positive integer, got {v!r}")
    share = -(-requests // replicas)
    b = largest_batch(perf, prompt, output, max_batch_seqs, share)
    tb = batch_time_s(perf, b, prompt, output, max_batch_tokens)
    n, r = divmod(share, b)
    dur = n * tb + batch_time_s(perf, r, prompt, output, max_batch_tokens)
    return OfflineSchedule(requests, replicas, b, tb, n, r, dur)
