"""Progress of one :func:`~cluster_sim.experiment.run.simulate` run, phase by phase.

The engines report ``tick(fraction, events)`` as simulated time advances
(:meth:`cluster_sim.engine.simulation.Simulation.run`,
:meth:`cluster_sim.engine.serving.engine.ServingEngine.run`); :class:`PhaseTicks` places each
engine's fraction inside its phase of the run and adds up the events of the phases before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["PhaseTicks"]


class PhaseTicks:
    """The engines' ``tick(fraction, events)`` mapped onto the phases of one run (``progress.tick``).

    >>> seen = []
    >>> class Bar:
    ...     def tick(self, done, total, events): seen.append((done, total, events))
    >>> ticks = PhaseTicks(Bar(), 3)
    >>> on_tick = ticks.phase(1)
    >>> on_tick(0.5, 10); ticks.phase(2)(0.25, 4)
    >>> seen
    [(1.5, 3.0, 10), (2.25, 3.0, 14)]
    >>> PhaseTicks(print, 3).phase(1) is None   # a plain callable: phase ends only
    True
    """

    def __init__(self, progress: Any, phases: int) -> None:
        self.tick = getattr(progress, "tick", None)
        self.phases = phases
        self.events = 0   # events of the engine phases already done

    def phase(self, done: int, span: int = 1) -> Callable[[float, int], None] | None:
        """The engine tick of the phase(s) ``done .. done + span`` (None without ``progress.tick``)."""
        tick = self.tick
        if tick is None:
            return None
        base = self.events

        def on_tick(frac: float, events: int) -> None:
            self.events = base + events
            tick(done + span * frac, float(self.phases), self.events)

        return on_tick
