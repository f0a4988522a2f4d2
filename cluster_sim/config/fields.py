"""What every part of the experiment-file schema shares: the size limits, the unit-parsing field
types ("1h", "4M", "400 Gbps" become SI floats at load), the strict base model and policy
references (:mod:`.schema` and its parts, :mod:`.inference`, :mod:`.offline`)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from .. import units
from ..errors import ConfigError

__all__ = [
    "CV",
    "CV_RANGE",
    "MAX_BATCH_SEQS",
    "MAX_BATCH_TOKENS",
    "MAX_CARDS",
    "MAX_DURATION_S",
    "MAX_JOBS",
    "MAX_JOBS_PER_HOUR",
    "MAX_REQUESTS",
    "MAX_REQUEST_RATE",
    "MAX_SEED",
    "MAX_TIMELINE_POINTS",
    "MAX_TOKENS",
    "MIN_CHECKPOINT_INTERVAL_S",
    "MIN_MTBF_S",
    "MIN_TIMELINE_INTERVAL_S",
    "SCALE_RANGE",
    "Bandwidth",
    "CV",
    "Cards",
    "Count",
    "Duration",
    "Name",
    "PolicyRef",
    "PosDuration",
    "Power",
    "Scale",
    "Strict",
    "no_duplicates",
    "policy_ref",
]

# Limits: anything beyond them is refused at load with the limit in the message (a run that
# large would exhaust memory or never finish; raise a limit here if a study really needs it).

MAX_CARDS = 1_000_000  # per topology, job or deployment
MAX_DURATION_S = 10 * units.YEAR
MAX_SEED = 2**63 - 1
MAX_JOBS = 10_000_000  # training jobs per experiment (explicit + generated + trace)
MAX_JOBS_PER_HOUR = 1_000_000.0
MAX_REQUESTS = 10_000_000  # requests per service
MAX_REQUEST_RATE = 100_000.0  # requests per second per service
MAX_TOKENS = 10_000_000  # tokens of one sequence (prompt, output, seq_len)
MAX_BATCH_SEQS = 65_536
MAX_BATCH_TOKENS = 16 * 2**20
MIN_MTBF_S = units.HOUR  # per card or node; below this failures would dominate every event
MIN_CHECKPOINT_INTERVAL_S = units.MINUTE
MIN_TIMELINE_INTERVAL_S = 1e-3
MAX_TIMELINE_POINTS = 1_000_000
CV_RANGE = (0.01, 100.0)  # coefficient of variation of arrival gaps
SCALE_RANGE = (1e-6, 1e6)  # time_scale, rate_scale


def _unit(parse: Any) -> Any:
    def convert(v: Any) -> Any:
        return None if v is None else parse(v)

    return BeforeValidator(convert)


Duration = Annotated[float, _unit(units.parse_duration), Field(ge=0, le=MAX_DURATION_S)]
PosDuration = Annotated[float, _unit(units.parse_duration), Field(gt=0, le=MAX_DURATION_S)]
Count = Annotated[float, _unit(units.parse_count), Field(gt=0, le=1e18)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Scale = Annotated[float, Field(ge=SCALE_RANGE[0], le=SCALE_RANGE[1])]
CV = Annotated[float, Field(ge=CV_RANGE[0], le=CV_RANGE[1])]
Cards = Annotated[int, Field(ge=1, le=MAX_CARDS)]
Bandwidth = Annotated[float, _unit(units.parse_bandwidth)]
Power = Annotated[float, _unit(units.parse_power)]


class Strict(BaseModel):
    """Base: frozen, unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class PolicyRef(Strict):
    """A policy by registry name plus its constructor keyword parameters."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, v: Any) -> Any:
        return {"name": v} if isinstance(v, str) else v


def policy_ref(name: str) -> Any:
    """A field defaulting to the policy ``name`` with no parameters."""
    return Field(default_factory=lambda: PolicyRef(name=name))


def no_duplicates(names: list[str], where: str) -> None:
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            raise ConfigError(f"{where}[{i}].name: duplicate name {name!r} (also {where}[{seen[name]}])")
        seen[name] = i
