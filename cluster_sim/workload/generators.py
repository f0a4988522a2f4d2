"""Synthetic training-job workloads as :class:`~cluster_sim.workload.jobs.JobTable`.

* :func:`industry_mix` - the mix the industry reports describe (about 90% fine-tunes of < 10B
  models on 1-8 cards lasting minutes to hours, a few % mid-size jobs on 16-128 cards, and a few
  pretraining jobs on hundreds to thousands of cards lasting days that take most card-hours).
  Parameters and their sources: ``workload/data/industry_mix.toml`` and ``docs/workloads.md``.
* :func:`uniform_jobs` - fixed-size jobs with Poisson arrivals and exponential durations, for
  closed-form (M/M/c) checks of the engine.

Both take ``deferrable_fraction`` and ``deadline_s``: each eligible job (every fine-tune of the
mix; every uniform job) is independently deferrable with that probability, with ``deadline_s``
seconds after its submit to finish (None = no deadline); an off-peak policy
(:mod:`cluster_sim.policies.training.offpeak`) may then hold it until cheap hours. With the
default 0 nothing is drawn, so the other columns are the same as without it.

>>> t = industry_mix(200, rng=1)
>>> len(t), bool((t.num_cards >= 1).all())
(200, True)
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..rng import as_generator
from . import arrivals
from .jobs import ANY_TYPE, KIND_FINETUNE, KIND_NAMES, JobTable

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["DEFAULT_JOBS_PER_HOUR", "MixClass", "industry_mix", "load_mix", "uniform_jobs"]

DEFAULT_JOBS_PER_HOUR = 40.0


@dataclass(frozen=True)
class MixClass:
    """One class of jobs in a mix (a ``[[class]]`` table of ``industry_mix.toml``).

    Card counts come from ``cards`` with ``card_weights``; run times are lognormal with median
    ``duration_median_s`` and log-standard-deviation ``duration_sigma``, clipped to
    ``[duration_min_s, duration_max_s]``.
    """

    name: str
    kind: str
    fraction: float
    cards: tuple[int, ...]
    card_weights: tuple[float, ...]
    duration_median_s: float
    duration_sigma: float
    duration_min_s: float
    duration_max_s: float
    models: tuple[str, ...] = ()
    model_weights: tuple[float, ...] = ()
    priority: int = 0
    preemptible: bool = True

    def __post_init__(self) -> None:
        where = f"mix class {self.name!r}"
        if self.kind not in KIND_NAMES:
            raise ConfigError(f"{where}: kind: must be one of {', '.join(KIND_NAMES)}, got {self.kind!r}")
        if not self.fraction >= 0:
            raise ConfigError(f"{where}: fraction: must be >= 0, got {self.fraction!r}")
        for what, vals, weights in (("cards", self.cards, self.card_weights),
                                    ("models", self.models, self.model_weights)):
            if len(vals) != len(weights) or (what == "cards" and not vals):
                raise ConfigError(f"{where}: {what} and their weights must be non-empty lists of equal length")
            if weights and (min(weights) < 0 or sum(weights) <= 0):
                raise ConfigError(f"{where}: {what[:-1]}_weights: must be >= 0 with a positive sum")
        if min(self.cards) < 1:
            raise ConfigError(f"{where}: cards: must be >= 1, got {list(self.cards)}")
        if not 0 < self.duration_min_s <= self.duration_median_s <= self.duration_max_s:
            raise ConfigError(f"{where}: need 0 < duration_min_s <= duration_median_s <= duration_max_s")
        if not self.duration_sigma >= 0:
            raise ConfigError(f"{where}: duration_sigma: must be >= 0, got {self.duration_sigma!r}")


@functools.lru_cache(maxsize=8)
def _load_mix_cached(text: str, where: str) -> tuple[MixClass, ...]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    rows = data.get("class")
    if not isinstance(rows, list) or not rows:
        raise ConfigError(f"{where}: expected one or more [[class]] tables")
    out = []
    for i, row in enumerate(rows):
        try:
            row = {k: tuple(v) if isinstance(v, list) else v for k, v in row.items()}
            out.append(MixClass(**row))
        except TypeError as exc:
            raise ConfigError(f"{where}: class[{i}]: {exc}") from None
    if sum(c.fraction for c in out) <= 0:
        raise ConfigError(f"{where}: class fractions must have a positive sum")
    return tuple(out)


def load_mix(path: str | Path | None = None) -> tuple[MixClass, ...]:
    """Job classes from a mix TOML file (default: the shipped ``industry_mix.toml``)."""
    if path is None:
        text = resources.files("cluster_sim.workload").joinpath("data/industry_mix.toml").read_text("utf-8")
        return _load_mix_cached(text, "industry_mix.toml")
    p = Path(path)
    try:
        text = p.read_text("utf-8")
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read mix file ({exc.strerror})") from None
    return _load_mix_cached(text, str(p))


def _arrival_times(n_jobs: int | None, rate_per_s: float, horizon_s: float | None, kind: str,
                   params: Mapping[str, Any], gen: np.random.Generator) -> np.ndarray:
    if horizon_s is not None:
        t = arrivals.generate(kind, rate_per_s, horizon_s, gen, **dict(params))
        return t if n_jobs is None else t[:n_jobs]
    assert n_jobs is not None
    horizon = (n_jobs * 1.25 + 10.0 * math.sqrt(n_jobs) + 20.0) / rate_per_s
    if kind == "diurnal":
        horizon = max(horizon, float(params.get("period_s", 86400.0)))
    for _ in range(60):
        t = arrivals.generate(kind, rate_per_s, horizon, gen, **dict(params))
        if t.size >= n_jobs:
            return t[:n_jobs]
        horizon *= 2.0
    raise ConfigError(f"arrivals ({kind}): could not produce {n_jobs} arrivals")  # pragma: no cover


def industry_mix(n_jobs: int | None = None, *, jobs_per_hour: float | None = None,
                 horizon_s: float | None = None, rng: np.random.Generator | int | None = None,
                 card_types: Sequence[str] = (), arrival: str = "poisson",
                 arrival_params: Mapping[str, Any] | None = None, mix: Sequence[MixClass] | str | Path | None = None,
                 tenants: Sequence[str] = ("default",), constrained_fraction: float = 0.0,
                 finetune_durations: Any = None, first_id: int = 0, deferrable_fraction: float = 0.0,
                 deadline_s: float | None = None) -> JobTable:
    """Generate the industry training-job mix.

    Parameters
    ----------
    n_jobs : int, optional
        Number of jobs. Without ``horizon_s`` exactly this many arrive (the horizon is whatever
        they need); with it, at most this many.
    jobs_per_hour : float, optional
        Mean arrival rate (default :data:`DEFAULT_JOBS_PER_HOUR`).
    horizon_s : float, optional
        Generate the arrivals falling in ``[0, horizon_s)``.
    rng : Generator, int or None
        Randomness (a seed goes through the ``industry_mix`` stream).
    card_types : sequence of str
        The table's type vocabulary. Jobs may run on any type unless ``constrained_fraction > 0``.
    arrival : str
        ``poisson``, ``gamma`` or ``diurnal`` (:mod:`cluster_sim.workload.arrivals`).
    arrival_params : mapping, optional
        Extra arguments of the arrival process (``cv`` for gamma; ``peak_to_trough``,
        ``period_s``, ``hourly`` for diurnal).
    mix : sequence of MixClass, path or None
        Job classes (default: ``industry_mix.toml``).
    tenants : sequence of str
        Tenants; each job gets one uniformly at random.
    constrained_fraction : float
        Fraction of jobs pinned to one card type drawn uniformly from ``card_types``.
    finetune_durations : object with ``sample(n, rng)``, optional
        Replaces the lognormal of ``finetune`` jobs, e.g. ``philly_sampler()``.
    first_id : int
        ``job_id`` of the first job; ids follow arrival order.
    deferrable_fraction, deadline_s : float
        Share of the ``finetune`` jobs that are deferrable, and their deadline in seconds after
        submit (None = none); see the module docstring.

    Returns
    -------
    JobTable
        Sorted by ``submit_s``; ``kind`` and ``model_idx`` tell the classes apart.
    """
    if n_jobs is None and horizon_s is None:
        raise ConfigError("industry_mix: give n_jobs, or jobs_per_hour with horizon_s")
    if n_jobs is not None and (isinstance(n_jobs, bool) or int(n_jobs) != n_jobs or n_jobs < 0):
        raise ConfigError(f"industry_mix.n_jobs: must be an integer >= 0, got {n_jobs!r}")
    rate_h = DEFAULT_JOBS_PER_HOUR if jobs_per_hour is None else float(jobs_per_hour)
    if not (math.isfinite(rate_h) and rate_h > 0):
        raise ConfigError(f"industry_mix.jobs_per_hour: must be > 0, got {jobs_per_hour!r}")
    if not 0.0 <= constrained_fraction <= 1.0:
        raise ConfigError(f"industry_mix.constrained_fraction: must be in [0, 1], got {constrained_fraction!r}")
    if constrained_fraction > 0 and not card_types:
        raise ConfigError("industry_mix.constrained_fraction: needs card_types to pin jobs to")
    classes = tuple(mix) if isinstance(mix, Sequence) and not isinstance(mix, str) else load_mix(mix)
    tenants = tuple(tenants)
    if not tenants:
        raise ConfigError("industry_mix.tenants: at least one tenant")

    gen = as_generator(rng, "industry_mix")
    g_arr, g_cls, g_card, g_dur, g_mod, g_misc = (np.random.default_rng(s) for s in
                                                   gen.integers(0, 2**63 - 1, size=6))
    submit = _arrival_times(None if n_jobs is None else int(n_jobs), rate_h / 3600.0, horizon_s, arrival,
                            arrival_params or {}, g_arr)
    n = submit.size
    frac = np.array([c.fraction for c in classes], dtype=np.float64)
    cls = g_cls.choice(len(classes), size=n, p=frac / frac.sum())

    models = tuple(dict.fromkeys(m for c in classes for m in c.models))
    num_cards = np.empty(n, np.int32)
    duration = np.empty(n, np.float64)
    model_idx = np.full(n, -1, np.int16)
    kind = np.empty(n, np.int8)
    priority = np.empty(n, np.int8)
    preemptible = np.empty(n, bool)
    for k, c in enumerate(classes):  # classes in file order: deterministic
        sel = np.flatnonzero(cls == k)
        m = sel.size
        w = np.asarray(c.card_weights, dtype=np.float64)
        num_cards[sel] = g_card.choice(np.asarray(c.cards), size=m, p=w / w.sum())
        if c.kind == "finetune" and finetune_durations is not None:
            d = np.asarray(finetune_durations.sample(m, g_dur), dtype=np.float64)
        else:
            d = c.duration_median_s * np.exp(c.duration_sigma * g_dur.standard_normal(m))
        duration[sel] = np.clip(d, c.duration_min_s, c.duration_max_s)
        if c.models:
            mw = np.asarray(c.model_weights, dtype=np.float64)
            idx = np.array([models.index(x) for x in c.models], np.int16)
            model_idx[sel] = idx[g_mod.choice(len(c.models), size=m, p=mw / mw.sum())]
        kind[sel] = KIND_NAMES.index(c.kind)
        priority[sel] = c.priority
        preemptible[sel] = c.preemptible

    tenant = g_misc.integers(0, len(tenants), size=n).astype(np.int16)
    type_mask = None
    if constrained_fraction > 0:

        type_mask = np.full(n, ANY_TYPE, dtype=np.uint64)
        pin = g_misc.random(n) < constrained_fraction
        bits = g_misc.integers(0, len(card_types), size=n).astype(np.uint64)
        type_mask[pin] = np.left_shift(np.uint64(1), bits[pin])
    defer, deadline = _deferrable("industry_mix", kind == KIND_FINETUNE, deferrable_fraction, deadline_s, g_misc)
    return JobTable(job_id=np.arange(first_id, first_id + n, dtype=np.int64), submit_s=submit,
                    num_cards=num_cards, duration_s=duration, type_mask=type_mask, model_idx=model_idx,
                    tenant=tenant, priority=priority, preemptible=preemptible, kind=kind,
                    card_types=tuple(card_types), models=models, tenants=tenants, deferrable=defer,
                    deadline_s=deadline)


def _deferrable(where: str, eligible: np.ndarray, fraction: float, deadline_s: float | None,
                gen: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``(deferrable, deadline_s)`` columns: each eligible row deferrable with probability
    ``fraction`` (no draw at all when it is 0), deadline ``deadline_s`` on those rows, else inf."""
    if isinstance(fraction, bool) or not (isinstance(fraction, (int, float)) and 0.0 <= fraction <= 1.0):
        raise ConfigError(f"{where}.deferrable_fraction: must be in [0, 1], got {fraction!r}")
    if deadline_s is not None and not (isinstance(deadline_s, (int, float)) and math.isfinite(deadline_s)
                                       and deadline_s > 0):
        raise ConfigError(f"{where}.deadline_s: must be a positive number of seconds, got {deadline_s!r}")
    if deadline_s is not None and fraction == 0:
        raise ConfigError(f"{where}.deadline_s: applies to deferrable jobs; set deferrable_fraction > 0")
    defer = eligible & (gen.random(eligible.size) < fraction) if fraction > 0 else np.zeros(eligible.size, bool)
    return defer, np.where(defer, np.inf if deadline_s is None else float(deadline_s), np.inf)


def _draw_tenants(where: str, n: int, tenants: tuple[str, ...], weights: Sequence[float] | None,
                  gen: np.random.Generator) -> np.ndarray:
    """Each of ``n`` jobs' tenant index: none drawn for one tenant (the stream is unchanged)."""
    if not tenants or not all(isinstance(t, str) and t for t in tenants):
        raise ConfigError(f"{where}.tenants: expected a non-empty list of tenant names, got {tenants!r:.60}")
    if weights is None:
        w = np.ones(len(tenants))
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (len(tenants),) or not (np.isfinite(w).all() and (w >= 0).all() and w.sum() > 0):
            raise ConfigError(f"{where}.tenant_weights: expected {len(tenants)} numbers >= 0 (one per "
                              f"tenant, not all 0), got {list(weights)!r:.60}")
    if len(tenants) == 1:
        return np.zeros(n, np.int16)
    return gen.choice(len(tenants), size=n, p=w / w.sum()).astype(np.int16)


def uniform_jobs(n_jobs: int, rate_per_s: float, mean_duration_s: float,
                 rng: np.random.Generator | int | None = None, *, num_cards: int = 1, card_milli: int = 1000,
                 card_types: Sequence[str] = (), kind: int = KIND_FINETUNE, first_id: int = 0,
                 preemptible: bool = False, deferrable_fraction: float = 0.0,
                 deadline_s: float | None = None, tenants: Sequence[str] = ("default",),
                 tenant_weights: Sequence[float] | None = None) -> JobTable:
    """``n_jobs`` identical-size jobs: Poisson arrivals of ``rate_per_s``, exponential run times
    (``preemptible``: whether a scheduler or pool policy may preempt them; ``deferrable_fraction``
    and ``deadline_s``: see the module docstring). With several ``tenants`` each job's tenant is
    drawn with probabilities ``tenant_weights`` (default equal), after every other column, so
    tenant ``k``'s jobs are a Poisson stream of ``rate_per_s x w_k / sum(w)``.

    With ``C`` cards and ``c = C // num_cards`` servers this is an M/M/c queue with
    ``lambda = rate_per_s`` and ``mu = 1 / mean_duration_s`` under FIFO. The first job arrives
    one exponential gap after 0.
    """
    if isinstance(n_jobs, bool) or int(n_jobs) != n_jobs or n_jobs < 0:
        raise ConfigError(f"uniform_jobs.n_jobs: must be an integer >= 0, got {n_jobs!r}")
    if not (rate_per_s > 0 and math.isfinite(rate_per_s)):
        raise ConfigError(f"uniform_jobs.rate_per_s: must be > 0, got {rate_per_s!r}")
    if not (mean_duration_s > 0 and math.isfinite(mean_duration_s)):
        raise ConfigError(f"uniform_jobs.mean_duration_s: must be > 0, got {mean_duration_s!r}")
    gen = as_generator(rng, "uniform_jobs")
    n = int(n_jobs)
    submit = np.cumsum(gen.exponential(1.0 / rate_per_s, size=n))
    duration = gen.exponential(mean_duration_s, size=n)
    duration = np.maximum(duration, np.finfo(np.float64).tiny)  # an exact 0 draw is not a valid duration
    defer, deadline = _deferrable("uniform_jobs", np.ones(n, bool), deferrable_fraction, deadline_s, gen)
    tenants = tuple(tenants)
    tenant = _draw_tenants("uniform_jobs", n, tenants, tenant_weights, gen)
    return JobTable(tenant=tenant, tenants=tenants, job_id=np.arange(first_id, first_id + n, dtype=np.int64), submit_s=submit,
                    num_cards=num_cards, duration_s=duration, card_milli=card_milli, kind=kind,
                    card_types=tuple(card_types), preemptible=np.full(n, bool(preemptible)),
                    deferrable=defer, deadline_s=deadline)
