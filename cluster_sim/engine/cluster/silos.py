"""Training silos per tenant on one simulation: :class:`TrainingSilos`.

A static pool partition with tenant silos (``static_partition`` with ``tenant_cards``) runs one
:class:`~cluster_sim.engine.cluster.training.TrainingEngine` per silo (and one for the training
cards in no silo, shared by every other tenant) on the same :class:`Simulation` clock and card
ledger. Each engine has its own :class:`~cluster_sim.engine.cluster.state.ClusterState` with every
card outside its silo reserved (the mechanism the inference partition already uses), so the
placement policies, the backfill, the admission check that rejects a job larger than its silo
and the engine's hot path are those of a cluster of the silo's cards: nothing is added to a run
without silos. Each silo has its own time-weighted levels (its utilization); the simulation's
levels are their sums (``blocked``: any silo blocked), advanced before any silo changes.

Not modelled: leaf uplinks shared by two silos carry only each silo's own flows (contention
between silos' jobs on one oversubscribed uplink is not seen); failures are drawn per silo over
the whole cluster and applied only to its own cards, so each card fails at its configured rate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...workload.jobs import JobTable
from ..simulation import Levels
from .state import ClusterState
from .training import TrainingEngine

__all__ = ["Silo", "TrainingSilos"]


@dataclass(frozen=True)
class Silo:
    """One training silo: its name (a tenant, or ``"(shared)"`` for the cards in no silo), its
    card ids and its jobs."""

    name: str
    cards: np.ndarray
    jobs: JobTable


class _SiloLevels(Levels):
    """A silo's levels: advancing them first advances the simulation's (the sum of all silos)."""

    def __init__(self, parent: Levels, card_types: tuple[str, ...], capacity: np.ndarray) -> None:
        super().__init__(card_types, capacity, parent.bin_s)
        self.parent = parent

    def advance(self, t: float) -> None:
        self.parent.advance(t)
        super().advance(t)


@dataclass
class _Host:
    """What a silo's engine sees of the simulation: the shared clock, streams, speed model and
    horizon, with its own cluster state and levels."""

    env: Any
    streams: Any
    speed: Any
    state: ClusterState
    levels: _SiloLevels
    horizon_s: float | None


class TrainingSilos:
    """The training subsystem of a simulation with tenant silos (see the module docstring).

    Parameters
    ----------
    silos : sequence of Silo
        Disjoint card sets covering the training cards, with their jobs.
    **engine_kwargs
        Passed to every :class:`TrainingEngine` (policies, backfill, failures, job speed hooks).
    """

    def __init__(self, silos: Sequence[Silo], **engine_kwargs: Any) -> None:
        self.silos = tuple(silos)
        self.engine_kwargs = engine_kwargs
        self.engines: list[TrainingEngine] = []
        self.levels: list[_SiloLevels] = []

    def connect(self, sim: Any) -> None:
        """One cluster state, levels and training engine per silo, on ``sim``'s clock and ledger."""
        lo = sim.layout
        everything = np.arange(lo.n_cards, dtype=np.int64)
        for s in self.silos:
            st = ClusterState(lo, throughput=sim.speed.throughput, ledger=sim.ledger)
            st.reserve(np.setdiff1d(everything, s.cards), f"cards outside silo {s.name!r}")
            lv = _SiloLevels(sim.levels, lo.card_types, st.type_capacity)
            eng = TrainingEngine(s.jobs, **self.engine_kwargs)
            eng.connect(_Host(sim.env, sim.streams, sim.speed, st, lv, sim.horizon_s))
            self.engines.append(eng)
            self.levels.append(lv)
        self._blocked = 3 * len(lo.card_types) + 2
        sim.levels.sample = self.sample_levels

    def sample_levels(self) -> list[float]:
        """The simulation's raw levels: the silos' summed (``blocked``: 1 if any silo is)."""
        rows = [e.sample_levels() for e in self.engines]
        out = [sum(col) for col in zip(*rows, strict=True)]
        b = self._blocked
        out[b] = max(r[b] for r in rows)
        return out

    def poke(self) -> None:
        """Ask every silo's engine for a scheduling cycle."""
        for e in self.engines:
            e.poke()

    def finalize(self, t: float) -> None:
        """Finalize each engine and bring each silo's levels up to ``t``."""
        for e, lv in zip(self.engines, self.levels, strict=True):
            lv.advance(t)
            e.finalize(t)

    @property
    def events(self) -> int:
        """Engine events over all silos."""
        return sum(e.events for e in self.engines)

    def record_parts(self, job_columns: Callable[[TrainingEngine], dict[str, np.ndarray]]
                     ) -> tuple[dict[str, np.ndarray], np.ndarray, int, dict[str, Any]]:
        """The merged job columns (in arrival order, as one engine would list them), segments
        (job rows in that order), events and meta (``silos``: each silo's name, cards per type and
        level integrals)."""
        parts = [job_columns(e) for e in self.engines]
        cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        order = np.lexsort((cols["job_id"], cols["submit_s"]))
        jobs = {k: v[order] for k, v in cols.items()}
        new_row = np.empty(order.size, np.int64)
        new_row[order] = np.arange(order.size)
        seg_rows, offset = [], 0
        for e in self.engines:
            if e.seg:
                a = np.array(e.seg, dtype=np.float64)
                a[:, 0] = new_row[a[:, 0].astype(np.int64) + offset]
                seg_rows.append(a)
            offset += e.n
        segments = np.concatenate(seg_rows) if seg_rows else np.zeros((0, 5))
        e0 = self.engines[0]
        meta: dict[str, Any] = {
            "policies": {"admission": repr(e0.admission), "ordering": repr(e0.ordering),
                         "placement": repr(e0.placement), "preemption": repr(e0.preemption),
                         "backfill": e0.backfill},
            "cycles": sum(e.scheduler.cycles for e in self.engines),
            "tenants": list(e0.table.tenants),
            "silos": [{"name": s.name, "capacity_by_type": np.asarray(e.state.type_capacity).tolist(),
                       "level_names": list(lv.names), "level_integral": lv.integral.tolist()}
                      for s, e, lv in zip(self.silos, self.engines, self.levels, strict=True)]}
        return jobs, segments, self.events, meta
