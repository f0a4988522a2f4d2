"""Topology files: YAML (or an equivalent dict) naming a builder and its parameters.

>>> t = load_topology({"name": "tiny", "builder": "fat_tree", "system": "hgx-h100", "nodes": 4})
>>> t.n_cards
32

Format (``docs/topology.md``)::

    name: h100-rail-1024            # optional, defaults to the file stem
    builder: rail                   # fat_tree | rail | supernode | multi_dc | heterogeneous | scaleup_domain
    system: hgx-h100
    nodes: 128
    fabric: ib_ndr
    oversubscription: 1             # or "4:1", or [leaf, spine]
    nic_bandwidth: 400 Gbps         # optional per-card override

Validation is strict: unknown keys, wrong types and unknown names raise
:class:`~cluster_sim.errors.TopologyError` naming the file and the field path, e.g.
``topologies/x.yaml: sites[1].system: unknown system 'dgx-h300'; known: ...``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .. import catalog
from ..errors import ClusterSimError, TopologyError
from ..units import parse_bandwidth, parse_distance
from . import builders
from .graph import Topology
from .safe_load import InputProblem, check_tree, parse_yaml, printable, read_text
from .torus import torus

__all__ = ["BUILDERS", "MAX_CARDS", "load_topology"]

MAX_CARDS = 1_000_000
"""Most cards one topology may have (a larger one is refused before it is built)."""


class _Bad(Exception):
    """A field failed validation; ``path`` is filled in by the caller."""


def _str(v: Any) -> str:
    if not isinstance(v, str) or not v.strip():
        raise _Bad(f"expected a non-empty string, got {v!r:.60}")
    return v


def _system(v: Any) -> str:
    try:
        return catalog.system(_str(v)).name
    except ClusterSimError as exc:
        raise _Bad(str(exc)) from None


def _fabric_of(tier: str) -> Callable[[Any], str]:
    def conv(v: Any) -> str:
        try:
            f = catalog.fabric(_str(v))
        except ClusterSimError as exc:
            raise _Bad(str(exc)) from None
        if f.tier != tier:
            raise _Bad(f"fabric {f.name!r} is a {f.tier} fabric; expected a {tier} fabric")
        return f.name
    return conv


def _pos_int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise _Bad(f"expected a positive integer, got {v!r:.40}")
    if v > MAX_CARDS:
        raise _Bad(f"{v:,} is more than the limit of {MAX_CARDS:,}")
    return v


def _tiers(v: Any) -> int:
    if v not in (2, 3) or isinstance(v, bool):
        raise _Bad(f"expected 2 or 3, got {v!r:.60}")
    return int(v)


def _ratio_one(v: Any) -> float:
    if isinstance(v, str) and ":" in v:
        a, _, b = v.partition(":")
        try:
            v = float(a) / float(b)
        except (ValueError, ZeroDivisionError):
            raise _Bad(f"expected a ratio such as '4:1', got {v!r:.60}") from None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 1:
        raise _Bad(f"expected a ratio >= 1 (a number or 'N:1'), got {v!r:.60}")
    return float(v)


def _ratio(v: Any) -> float | list[float]:
    if isinstance(v, list):
        if not 1 <= len(v) <= 2:
            raise _Bad(f"expected [leaf, spine] ratios, got {v!r:.60}")
        return [_ratio_one(x) for x in v]
    return _ratio_one(v)


def _gbps(v: Any) -> float:
    if not isinstance(v, str):
        raise _Bad(f"expected a bandwidth with a unit such as '400 Gbps', got {v!r:.60}")
    try:
        bps = parse_bandwidth(v)
    except ClusterSimError as exc:
        raise _Bad(str(exc)) from None
    if bps <= 0:
        raise _Bad(f"bandwidth must be > 0, got {v!r:.60}")
    return bps * 8 / 1e9


def _km_one(v: Any) -> float:
    if not isinstance(v, str):
        raise _Bad(f"expected a distance with a unit such as '300 km', got {v!r:.60}")
    try:
        m = parse_distance(v)
    except ClusterSimError as exc:
        raise _Bad(str(exc)) from None
    if m < 0:
        raise _Bad(f"distance must be >= 0, got {v!r:.60}")
    return m / 1e3


def _km(v: Any) -> float | list[list[float]]:
    if isinstance(v, list):
        if not all(isinstance(row, list) for row in v):
            raise _Bad("expected one distance or a square matrix (list of lists) of distances")
        return [[_km_one(x) for x in row] for row in v]
    return _km_one(v)


def _dims(v: Any) -> list[int]:
    if not isinstance(v, list) or not 1 <= len(v) <= 3:
        raise _Bad(f"expected a list of 1 to 3 torus dimensions such as [4, 4, 8], got {v!r:.60}")
    return [_pos_int(d) for d in v]


SCALEOUT = _fabric_of("scaleout")
COMMON = {"system": ("system", _system), "fabric": ("fabric", SCALEOUT),
          "oversubscription": ("oversubscription", _ratio), "leaf_radix": ("leaf_radix", _pos_int),
          "nic_bandwidth": ("nic_gbps", _gbps)}
TREE = {**COMMON, "nodes": ("nodes", _pos_int), "tiers": ("tiers", _tiers),
        "pod_leaves": ("pod_leaves", _pos_int)}
PART = {"system": ("system", _system), "nodes": ("nodes", _pos_int), "nic_bandwidth": ("nic_gbps", _gbps)}

# builder name -> (function, {yaml key: (keyword, converter)}, required yaml keys)
BUILDERS: dict[str, tuple[Callable[..., Topology], dict[str, tuple[str, Callable[[Any], Any]]], tuple[str, ...]]] = {
    "fat_tree": (builders.fat_tree, TREE, ("system", "nodes")),
    "rail": (builders.rail_optimized,
             {k: TREE[k] for k in ("system", "nodes", "fabric", "oversubscription", "leaf_radix",
                                   "nic_bandwidth")}, ("system", "nodes")),
    "supernode": (builders.supernode_cluster, {**COMMON, "supernodes": ("supernodes", _pos_int)},
                  ("supernodes",)),
    "scaleup_domain": (builders.scaleup_domain,
                       {"system": COMMON["system"], "count": ("count", _pos_int), "fabric": COMMON["fabric"],
                        "nic_bandwidth": COMMON["nic_bandwidth"]}, ("system",)),
    "heterogeneous": (builders.heterogeneous,
                      {k: TREE[k] for k in ("fabric", "oversubscription", "leaf_radix", "tiers", "pod_leaves")},
                      ("parts",)),
    "torus": (torus, {"system": COMMON["system"], "dims": ("dims", _dims), "count": ("count", _pos_int),
                      "fabric": COMMON["fabric"], "nic_bandwidth": COMMON["nic_bandwidth"]}, ("system", "dims")),
    "multi_dc": (builders.multi_dc,
                 {"distance": ("distance_km", _km), "convergence_ratio": ("convergence_ratio", _ratio_one),
                  "dci_bandwidth": ("dci_gbps", _gbps), "dci_fabric": ("dci_fabric", _fabric_of("dci"))},
                 ("sites", "distance")),
}
META = ("name", "builder", "description")


def _check_keys(raw: dict[str, Any], allowed: list[str], prefix: str) -> None:
    for key in raw:
        if key not in allowed:
            raise _Bad(f"{prefix}{key}: unknown key; allowed: {', '.join(sorted(set(allowed)))}")


def _convert(raw: dict[str, Any], schema: Mapping[str, tuple[str, Callable[[Any], Any]]], prefix: str) -> dict[str, Any]:
    out = {}
    for key, value in raw.items():
        if key in schema:
            kw, conv = schema[key]
            try:
                out[kw] = conv(value)
            except _Bad as exc:
                raise _Bad(f"{prefix}{key}: {exc}") from None
    return out


def _spec_kwargs(raw: Any, prefix: str, base: Path, where: str, nested: bool) -> tuple[str, dict[str, Any]]:
    if not isinstance(raw, dict):
        raise _Bad(f"{prefix.rstrip('.') or 'top level'}: expected a mapping, got {type(raw).__name__}")
    name = raw.get("builder")
    if name is None:
        raise _Bad(f"{prefix}builder: missing; one of {', '.join(sorted(BUILDERS))}")
    if not isinstance(name, str) or name not in BUILDERS or (nested and name == "multi_dc"):
        known = sorted(b for b in BUILDERS if not (nested and b == "multi_dc"))
        raise _Bad(f"{prefix}builder: unknown builder {name!r:.60}; known: {', '.join(known)}")
    fn, schema, required = BUILDERS[name]
    _check_keys(raw, [*META, *schema, *required], prefix)
    for key in required:
        if key not in raw:
            raise _Bad(f"{prefix}{key}: missing (required by builder {name!r})")
    kwargs = _convert(raw, schema, prefix)
    if "name" in raw:
        kwargs["name"] = _convert(raw, {"name": ("name", _str)}, prefix)["name"]
    if name == "heterogeneous":
        parts = raw["parts"]
        if not isinstance(parts, list) or not parts:
            raise _Bad(f"{prefix}parts: expected a non-empty list of {{system, nodes}}")
        kwargs["parts"] = []
        for i, p in enumerate(parts):
            if not isinstance(p, dict):
                raise _Bad(f"{prefix}parts[{i}]: expected a mapping with system and nodes")
            _check_keys(p, list(PART), f"{prefix}parts[{i}].")
            for key in ("system", "nodes"):
                if key not in p:
                    raise _Bad(f"{prefix}parts[{i}].{key}: missing")
            kwargs["parts"].append(_convert(p, PART, f"{prefix}parts[{i}]."))
    if name == "multi_dc":
        sites = raw["sites"]
        if not isinstance(sites, list) or len(sites) < 2:
            raise _Bad(f"{prefix}sites: expected a list of at least 2 sites (file paths or inline specs)")
        kwargs["sites"] = [_site(s, f"{prefix}sites[{i}]", base, where) for i, s in enumerate(sites)]
    return name, kwargs


def _site(raw: Any, path: str, base: Path, where: str) -> Topology:
    if isinstance(raw, str):
        file = (base / raw) if not Path(raw).is_absolute() else Path(raw)
        try:
            site_raw = parse_yaml(read_text(file))
        except InputProblem as exc:
            if exc.what == "no such file":
                raise _Bad(f"{path}: no such topology file {raw!r} (relative to {base})") from None
            raise _Bad(f"{path}: {_problem(exc, raw)}") from None
        if isinstance(site_raw, dict) and site_raw.get("builder") == "multi_dc":
            raise _Bad(f"{path}: {raw!r} is itself a multi_dc topology; sites must be single sites")
        try:
            return _build(site_raw, str(file), file.parent, file.stem)
        except TopologyError as exc:
            raise _Bad(f"{path}: {exc}") from None
    name, kwargs = _spec_kwargs(raw, f"{path}.", base, where, nested=True)
    _check_size(name, kwargs)
    try:
        return BUILDERS[name][0](**kwargs)
    except TopologyError as exc:
        raise _Bad(f"{path}: {exc}") from None


def _cards(name: str, kw: dict[str, Any]) -> int:
    """Cards the builder ``name`` would make from ``kw`` (sites already built for multi_dc)."""
    if name in ("fat_tree", "rail"):
        return int(kw["nodes"]) * catalog.system(kw["system"]).cards_per_node
    if name == "supernode":
        return int(kw["supernodes"]) * catalog.system(kw.get("system", "cloudmatrix384")).domain_cards
    if name == "scaleup_domain":
        return int(kw.get("count", 1)) * catalog.system(kw["system"]).domain_cards
    if name == "torus":
        return int(kw.get("count", 1)) * math.prod(kw["dims"])
    if name == "heterogeneous":
        return sum(int(p["nodes"]) * catalog.system(p["system"]).cards_per_node for p in kw["parts"])
    return sum(site.n_cards for site in kw["sites"])


def _check_size(name: str, kwargs: dict[str, Any]) -> None:
    n = _cards(name, kwargs)
    if n > MAX_CARDS:
        raise _Bad(f"{n:,} cards is more than the limit of {MAX_CARDS:,} cards per topology")


def _problem(exc: InputProblem, shown: str) -> str:
    if exc.what == "no such file":
        return f"{shown}: no such topology file"
    if exc.what == "invalid YAML":
        line = f" (line {exc.line})" if exc.line is not None else ""
        return f"{shown}: invalid YAML{line}: {exc.detail}"
    return exc.format(shown)


def _read_yaml(file: Path, shown: str) -> Any:
    try:
        return parse_yaml(read_text(file))
    except InputProblem as exc:
        raise TopologyError(_problem(exc, shown)) from None


def _build(raw: Any, where: str, base: Path, default_name: str) -> Topology:
    try:
        name, kwargs = _spec_kwargs(raw, "", base, where, nested=False)
        _check_size(name, kwargs)
    except _Bad as exc:
        raise TopologyError(f"{where}: {exc}") from None
    kwargs.setdefault("name", default_name)
    try:
        topo = BUILDERS[name][0](**kwargs)
        topo.validate()
    except TopologyError as exc:
        raise TopologyError(f"{where}: {exc}") from None
    return topo


def load_topology(path_or_dict: str | Path | dict[str, Any], *, base_dir: str | Path | None = None) -> Topology:
    """Build and validate a topology from a YAML file or an equivalent dict.

    Parameters
    ----------
    path_or_dict : str, Path or dict
        A YAML file, or its content as a dict (inline specs in experiment files).
    base_dir : str or Path, optional
        Where relative site files of a dict resolve (default: the file's folder, or the
        current directory for a dict).

    Raises
    ------
    TopologyError
        One line naming the file and the field path.
    """
    try:
        if isinstance(path_or_dict, dict):
            base = Path(base_dir) if base_dir is not None else Path.cwd()
            try:
                check_tree(path_or_dict)
            except InputProblem as exc:
                raise TopologyError(exc.format("<inline topology>")) from None
            return _build(path_or_dict, "<inline topology>", base, "inline")
        file = Path(path_or_dict)
        base = Path(base_dir) if base_dir is not None else file.parent
        return _build(_read_yaml(file, str(path_or_dict)), str(path_or_dict), base, file.stem)
    except TopologyError as exc:  # keys, values and file names are echoed: keep it one line
        raise TopologyError(printable(str(exc))) from None
