"""``failures.stragglers``: fail-slow episodes of nodes or cards (docs/faults_stragglers.md).

The response to a detected episode is a training policy (``policy.training.stragglers``:
``ignore`` or ``replace``), so it is set beside the other scheduling choices; the episodes
themselves are a failure process with their own random stream (``"failures.stragglers"``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from .fields import MIN_MTBF_S, Duration, PosDuration, Strict

__all__ = ["StragglersConfig"]

MAX_RATE_PER_1000_NODE_DAYS = 1e5  # 100 episodes per node-day: more would be every event
Factor = Annotated[float, Field(gt=0.0, lt=1.0)]


def _range(v: Any) -> Any:
    """A number (or a unit string) is the range ``[v, v]``."""
    return v if isinstance(v, (list, tuple)) else [v, v]


class StragglersConfig(Strict):
    """Fail-slow episodes: how often, how slow, how long, how soon they are detected."""

    unit: Literal["node", "card"] = Field("node", description="what slows: all cards of a node, or one card")
    rate_per_1000_node_days: float | None = Field(None, gt=0.0, le=MAX_RATE_PER_1000_NODE_DAYS, description=(
        "episodes per 1,000 node-days over the cluster (whatever the unit)"))
    mtbf: PosDuration | None = Field(None, ge=MIN_MTBF_S, description="mean time between episodes of one unit")
    slowdown: list[Factor] = Field(min_length=2, max_length=2, description=(
        "speed factor in (0, 1) of a slow unit; [lo, hi]: drawn uniformly"))
    duration: list[PosDuration] = Field(min_length=2, max_length=2, description=(
        "how long an episode lasts (until the unit recovers or is repaired); [lo, hi]: drawn uniformly"))
    detection_window: Duration = Field(600.0, description="from an episode's start until it is detected "
                                                          "(assumed default: 10 min)")

    @field_validator("slowdown", "duration", mode="before")
    @classmethod
    def _one_or_range(cls, v: Any) -> Any:
        return _range(v)

    @model_validator(mode="after")
    def _check(self) -> StragglersConfig:
        if (self.rate_per_1000_node_days is None) == (self.mtbf is None):
            raise ValueError("give rate_per_1000_node_days or mtbf (per unit), exactly one")
        for name in ("slowdown", "duration"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ValueError(f"{name}: [lo, hi] with lo {lo:g} > hi {hi:g}")
        return self
