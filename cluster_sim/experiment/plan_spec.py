"""The plan file (``cluster-sim plan PLAN.yaml``): a workload, fleet candidates and objectives.

::

    experiment: plan_supernode_workload.yaml   # the workload, relative to this file
    set: {duration: 60s}                       # optional: --set overrides for every run
    seeds: 2                                   # a count N (seeds 0..N-1) or a list
    candidates:                                # named options ...
      - name: nodes-910b
        topology: {builder: fat_tree, system: atlas-800t-a2, nodes: 48, fabric: roce}
        card_type: ascend-910b
      - name: supernode-910c
        topology: {builder: supernode, system: cloudmatrix384, supernodes: 1}
        card_type: ascend-910c
    grid:                                      # ... and/or a grid (every combination)
      fleet: [{name: a100, topology: ..., card_type: a100-80gb}, {name: h100, ...}]
      pd: ["2:6", "4:4"]
    objectives:
      inference.chat.slo_attainment: ">= 0.9"
      training.days_to_train: "<= 45"

A **candidate** is a set of config overrides, written with these fields (:data:`CANDIDATE_FIELDS`;
:func:`candidate_overrides` turns them into dotted overrides):

* ``topology``: a topology file or inline builder spec -> ``cluster.topology``.
* ``oversubscription``: the inline spec's ``oversubscription`` (e.g. ``"4:1"``).
* ``dc_split``: ``{distance: 300 km, convergence_ratio: 16, ...}``: the inline spec split into two
  equal sites (half its ``nodes`` or ``supernodes`` each) of a ``multi_dc`` topology.
* ``card_type``: every explicit training job's ``card_type`` and every service's deployment card
  type (``prefill`` and ``decode`` of a disaggregated one).
* ``pd``: ``"P:D"`` (every service) or ``{service: "P:D"}``: a disaggregated deployment with P
  prefill and D decode replicas.
* ``set``: any other dotted overrides, applied last.

A grid axis is one of those fields (a list of its values), a dotted config path (a list of
values), or ``fleet`` (a list of partial candidates, each with a ``name``). Every field is
checked here, before any run: one ``ConfigError`` naming the file and the field.
"""

from __future__ import annotations

import itertools
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import catalog
from ..config import ExperimentConfig, read_mapping
from ..errors import ClusterSimError, ConfigError
from .sweep_spec import spec_experiment

__all__ = ["CANDIDATE_FIELDS", "DERIVED", "PLAN_FIELDS", "Candidate", "Objective", "PlanSpec",
           "candidate_overrides", "known_metrics", "load_plan_file", "parse_objectives"]

PLAN_FIELDS = ("experiment", "set", "seeds", "candidates", "grid", "objectives")
CANDIDATE_FIELDS = ("name", "topology", "oversubscription", "dc_split", "card_type", "pd", "set")
DC_SPLIT_FIELDS = ("distance", "convergence_ratio", "dci_bandwidth", "dci_fabric")
DERIVED = ("cost_per_day_usd", "cost_per_mtok_usd")
"""Plan metrics computed per run from the summary (docs/planner.md): ``cost_usd / sim.end_s x
86,400`` and ``inference.cost_per_mtok_usd``."""

_SERVICE_METRICS = ("slo_attainment", "goodput_rps", "tokens_per_s_per_card", "cost_per_mtok_usd",
                    *(f"{k}.{p}" for k in ("ttft_s", "tpot_s", "e2e_s") for p in ("p50", "p90", "p99")))
_JOB_METRICS = ("mfu", "step_time_s", "tokens_per_s", "days_to_train", "cost_usd")
_OBJECTIVE = re.compile(r"^\s*(>=|<=)\s*([-+0-9.eE]+)\s*$")


@dataclass(frozen=True)
class Objective:
    """``metric >= target`` (``op=">="``, higher is better) or ``metric <= target``."""

    metric: str
    op: str
    target: float

    def met(self, value: float) -> bool:
        """Whether ``value`` meets it (NaN never does)."""
        if math.isnan(value):
            return False
        return value >= self.target if self.op == ">=" else value <= self.target

    def shortfall(self, value: float) -> float:
        """How far ``value`` misses, relative to ``|target|`` (0 when met, inf for NaN)."""
        if math.isnan(value):
            return math.inf
        gap = self.target - value if self.op == ">=" else value - self.target
        return max(0.0, gap) / (abs(self.target) or 1.0)

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.target:g}"


@dataclass
class Candidate:
    """One fleet option: its name and its fields (as :data:`CANDIDATE_FIELDS` spell them)."""

    name: str
    fields: dict[str, Any]


@dataclass
class PlanSpec:
    """A plan file's content, ``experiment`` resolved against the file's folder."""

    experiment: str
    candidates: list[Candidate]
    objectives: list[Objective]
    overrides: dict[str, Any] = field(default_factory=dict)
    seeds: int | list[int] = 1


def parse_objectives(raw: Any, where: str) -> list[Objective]:
    """``{metric: ">= x" | "<= y"}`` -> objectives (at least one)."""
    if not isinstance(raw, Mapping) or not raw:
        raise ConfigError(f"{where}: expected a mapping metric -> \">= x\" or \"<= y\" (at least one)")
    out = []
    for metric, text in raw.items():
        m = _OBJECTIVE.match(str(text)) if isinstance(text, str) else None
        if not isinstance(metric, str) or m is None:
            raise ConfigError(f"{where}.{metric}: expected \">= NUMBER\" or \"<= NUMBER\", got {text!r}")
        try:
            target = float(m.group(2))
        except ValueError:
            raise ConfigError(f"{where}.{metric}: {m.group(2)!r} is not a number") from None
        if not math.isfinite(target):
            raise ConfigError(f"{where}.{metric}: the target must be finite, got {target}")
        out.append(Objective(metric, m.group(1), target))
    return out


def known_metrics(cfg: ExperimentConfig) -> list[str]:
    """The metrics an objective may name for this workload: :data:`DERIVED`, ``cost_usd``, the
    serving keys of the whole and of each service, and the explicit training jobs' estimates."""
    out = [*DERIVED, "cost_usd"]
    services = [s.name for s in cfg.inference.services] if cfg.inference is not None else []
    if services:
        for prefix in ("inference", *(f"inference.{s}" for s in services)):
            out.extend(f"{prefix}.{k}" for k in _SERVICE_METRICS if f"{prefix}.{k}" not in out)
    jobs = list(cfg.training.jobs) if cfg.training is not None else []
    if jobs:
        out += ["training.mfu", "training.tokens_per_s"]
        if len(jobs) == 1:
            out += ["training.step_time_s"] + (["training.days_to_train"] if jobs[0].tokens else [])
        for j in jobs:
            out += [f"training.job.{j.name}.{k}" for k in _JOB_METRICS
                    if j.tokens or k not in ("days_to_train", "cost_usd")]
    return out


def _pd(text: Any, where: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*:\s*(\d+)\s*", text) if isinstance(text, str) else None
    if m is None or int(m.group(1)) < 1 or int(m.group(2)) < 1:
        raise ConfigError(f"{where}: expected \"P:D\" with P, D >= 1 (prefill:decode replicas), got {text!r}")
    return int(m.group(1)), int(m.group(2))


def _inline_topology(fields: Mapping[str, Any], base: ExperimentConfig, where: str, what: str) -> dict[str, Any]:
    topo = fields.get("topology", base.cluster.topology)
    if not isinstance(topo, Mapping):
        raise ConfigError(f"{where}.{what}: needs an inline topology spec ({{builder: ..., ...}}); "
                          f"the topology is the file {topo!r}")
    return dict(topo)


def _split(spec: dict[str, Any], raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, Mapping) or "distance" not in raw:
        raise ConfigError(f"{where}: expected {{distance: 300 km, ...}} (fields: {', '.join(DC_SPLIT_FIELDS)})")
    bad = sorted(set(raw) - set(DC_SPLIT_FIELDS))
    if bad:
        raise ConfigError(f"{where}.{bad[0]}: unknown field; known: {', '.join(DC_SPLIT_FIELDS)}")
    size = "supernodes" if spec.get("builder") == "supernode" else "nodes"
    n = spec.get(size)
    if spec.get("builder") not in ("fat_tree", "rail", "supernode") or not isinstance(n, int) or n < 2 or n % 2:
        raise ConfigError(f"{where}: splits a fat_tree, rail or supernode topology with an even {size} "
                          f"count >= 2 into two sites; got builder {spec.get('builder')!r}, {size} {n!r}")
    half = {k: v for k, v in spec.items() if k != "name"} | {size: n // 2}
    name = spec.get("name", f"{spec['builder']}-{n}")
    return {"name": f"{name}-2dc", "builder": "multi_dc", "sites": [half, dict(half)], **dict(raw)}


def candidate_overrides(fields: Mapping[str, Any], base: ExperimentConfig, where: str = "candidate"
                        ) -> dict[str, Any]:
    """The dotted config overrides of one candidate (``fields`` as :data:`CANDIDATE_FIELDS`) on
    the workload ``base`` (which says which services and jobs a ``card_type`` or ``pd`` reaches).

    >>> from cluster_sim.config import load_config
    >>> base = load_config("workloads/serving_13b_colocated_vs_pd.yaml")
    >>> candidate_overrides({"pd": "3:5", "card_type": "h100-sxm"}, base)  # doctest: +NORMALIZE_WHITESPACE
    {'inference.services.0.deployment.mode': 'disaggregated',
     'inference.services.0.deployment.prefill.replicas': 3,
     'inference.services.0.deployment.decode.replicas': 5,
     'inference.services.0.deployment.prefill.card_type': 'h100-sxm',
     'inference.services.0.deployment.decode.card_type': 'h100-sxm'}
    """
    bad = sorted(set(fields) - set(CANDIDATE_FIELDS))
    if bad:
        raise ConfigError(f"{where}.{bad[0]}: unknown candidate field; known: {', '.join(CANDIDATE_FIELDS)}")
    out: dict[str, Any] = {}
    if "topology" in fields:
        out["cluster.topology"] = fields["topology"]
    if "oversubscription" in fields or "dc_split" in fields:
        spec = _inline_topology(fields, base, where, "oversubscription" if "oversubscription" in fields else "dc_split")
        if "oversubscription" in fields:
            spec["oversubscription"] = fields["oversubscription"]
        if "dc_split" in fields:
            spec = _split(spec, fields["dc_split"], f"{where}.dc_split")
        out["cluster.topology"] = spec
    services = list(base.inference.services) if base.inference is not None else []
    disagg = {i for i, s in enumerate(services) if s.deployment.mode == "disaggregated"}
    if "pd" in fields:
        pd_raw = fields["pd"]
        names = [s.name for s in services]
        if not services:
            raise ConfigError(f"{where}.pd: the workload has no inference service")
        per = dict(pd_raw) if isinstance(pd_raw, Mapping) else dict.fromkeys(names, pd_raw)
        for svc, text in per.items():
            if svc not in names:
                raise ConfigError(f"{where}.pd.{svc}: no such service; services: {', '.join(names)}")
            i = names.index(svc)
            p, d = _pd(text, f"{where}.pd" + (f".{svc}" if isinstance(pd_raw, Mapping) else ""))
            at = f"inference.services.{i}.deployment"
            out.update({f"{at}.mode": "disaggregated", f"{at}.prefill.replicas": p, f"{at}.decode.replicas": d})
            disagg.add(i)
    if "card_type" in fields:
        ct = fields["card_type"]
        if not isinstance(ct, str) or not ct:
            raise ConfigError(f"{where}.card_type: expected a card type name, got {ct!r}")
        if not base.catalog:  # (a user catalog's cards are known only while the experiment loads)
            try:
                catalog.accelerator(ct)
            except ClusterSimError as exc:
                raise ConfigError(f"{where}.card_type: {exc}") from None
        for i, s in enumerate(services):
            at = f"inference.services.{i}.deployment"
            if i in disagg:
                out.update({f"{at}.prefill.card_type": ct, f"{at}.decode.card_type": ct})
            elif s.deployment.groups is not None:
                raise ConfigError(f"{where}.card_type: service {s.name!r} has replica groups of several card "
                                  "types; set them with set: instead")
            else:
                out[f"{at}.card_type"] = ct
        for j, _ in enumerate(base.training.jobs if base.training is not None else []):
            out[f"training.jobs.{j}.card_type"] = ct
    extra = fields.get("set", {})
    if not isinstance(extra, Mapping):
        raise ConfigError(f"{where}.set: expected a mapping path -> value, got {extra!r}")
    out.update({str(k): v for k, v in extra.items()})
    return out


def _value_name(axis: str, value: Any) -> str:
    if isinstance(value, Mapping):
        return str(value.get("name", value.get("builder", "spec")))
    if axis == "topology" and isinstance(value, str):
        return Path(value).stem
    return str(value)


def _grid(raw: Any, where: str) -> list[Candidate]:
    if not isinstance(raw, Mapping) or not raw:
        raise ConfigError(f"{where}: expected a mapping axis -> [values] (at least one axis)")
    axes: list[list[tuple[str, dict[str, Any]]]] = []
    for axis, values in raw.items():
        at = f"{where}.{axis}"
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{at}: expected a non-empty list of values")
        if axis == "fleet":
            opts = []
            for k, v in enumerate(values):
                if not isinstance(v, Mapping) or not isinstance(v.get("name"), str):
                    raise ConfigError(f"{at}[{k}]: expected a partial candidate with a name")
                opts.append((str(v["name"]), {f: x for f, x in v.items() if f != "name"}))
        elif axis in CANDIDATE_FIELDS and axis not in ("name", "set"):
            opts = [(f"{axis}={_value_name(axis, v)}", {axis: v}) for v in values]
        elif "." in str(axis):
            opts = [(f"{axis}={v}", {"set": {axis: v}}) for v in values]
        else:
            known = [f for f in CANDIDATE_FIELDS if f not in ("name", "set")]
            raise ConfigError(f"{at}: unknown candidate field; known: fleet, {', '.join(known)} "
                              "or a dotted config path")
        axes.append(opts)
    out = []
    for combo in itertools.product(*axes):
        fields: dict[str, Any] = {}
        for _, part in combo:
            sets = {**fields.get("set", {}), **part.get("set", {})}
            fields.update(part)
            if sets:
                fields["set"] = sets
        out.append(Candidate(", ".join(n for n, _ in combo), fields))
    return out


def load_plan_file(path: str | os.PathLike[str]) -> PlanSpec:
    """Read and check a plan file's fields (each candidate's overrides are checked by the planner)."""
    src = Path(path)
    data = read_mapping(src)
    exp_path = spec_experiment(src, data, PLAN_FIELDS)
    overrides = data.get("set", {})
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"{src}: set: expected a mapping path -> value, got {overrides!r}")
    seeds = data.get("seeds", 1)
    if isinstance(seeds, bool) or not isinstance(seeds, (int, list)) or (isinstance(seeds, int) and seeds <= 0):
        raise ConfigError(f"{src}: seeds: expected a count N >= 1 or a list of seeds, got {seeds!r}")
    cands: list[Candidate] = []
    listed = data.get("candidates", [])
    if not isinstance(listed, list):
        raise ConfigError(f"{src}: candidates: expected a list of named candidates")
    for k, c in enumerate(listed):
        if not isinstance(c, Mapping) or not isinstance(c.get("name"), str) or not c["name"].strip():
            raise ConfigError(f"{src}: candidates[{k}]: expected a mapping with a name")
        cands.append(Candidate(str(c["name"]), {f: v for f, v in c.items() if f != "name"}))
    if "grid" in data:
        cands += _grid(data["grid"], f"{src}: grid")
    if not cands:
        raise ConfigError(f"{src}: candidates: no candidate (give a non-empty candidates: list or a grid:)")
    names = [c.name for c in cands]
    dup = next((n for i, n in enumerate(names) if n in names[:i]), None)
    if dup is not None:
        raise ConfigError(f"{src}: candidates: the name {dup!r} is given twice")
    objectives = parse_objectives(data.get("objectives"), f"{src}: objectives")
    return PlanSpec(experiment=str(exp_path), candidates=cands, objectives=objectives,
                    overrides={str(k): v for k, v in overrides.items()}, seeds=seeds)


def check_seeds(seeds: int | Sequence[int], where: str = "--seeds") -> None:
    """Seeds <= 0 (or an empty list) fail before any run."""
    if isinstance(seeds, int) and not isinstance(seeds, bool) and seeds <= 0:
        raise ConfigError(f"{where}: {seeds} runs per candidate; give a count >= 1")
    if not isinstance(seeds, int) and not list(seeds):
        raise ConfigError(f"{where}: give at least one seed")
