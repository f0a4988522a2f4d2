"""Hardware catalog: accelerators and systems as data files with sources.

>>> from cluster_sim import catalog
>>> catalog.accelerator("h100-sxm").bf16_tflops_dense
989.4
>>> catalog.system("cloudmatrix384").domain_cards
384
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from importlib import resources
from typing import Any, TypeVar

from ..errors import CatalogError
from .accelerators import AcceleratorSpec
from .nodes import SystemSpec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "AcceleratorSpec",
    "SystemSpec",
    "accelerator",
    "accelerators",
    "system",
    "systems",
]

CONFIDENCE_TAGS = ("V", "S", "R", "D", "U")
T = TypeVar("T")


def _normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(" ", "-")


def _build(cls: type[T], name: str, raw: dict[str, Any], where: str) -> T:
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise CatalogError(f"{where}.{name}.{unknown[0]}: unknown field; known: {', '.join(sorted(fields))}")
    required = [
        f.name for f in fields.values()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING  # type: ignore[misc]
        and f.name != "name"
    ]
    missing = [f for f in required if f not in raw]
    if missing:
        raise CatalogError(f"{where}.{name}: missing field {missing[0]!r}")
    if raw.get("confidence", "U") not in CONFIDENCE_TAGS:
        raise CatalogError(f"{where}.{name}.confidence: must be one of {', '.join(CONFIDENCE_TAGS)}")
    if not raw.get("source"):
        raise CatalogError(f"{where}.{name}.source: every entry needs a source")
    for key, value in raw.items():
        f = fields[key]
        if f.type in ("float", "int") and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise CatalogError(f"{where}.{name}.{key}: expected a number, got {value!r}")
        if f.type in ("float", "int") and value < 0:
            raise CatalogError(f"{where}.{name}.{key}: must be >= 0, got {value!r}")
    return cls(name=name, **raw)  # type: ignore[call-arg]


def _load_file(filename: str, cls: type[T]) -> dict[str, T]:
    text = resources.files(__package__).joinpath("data").joinpath(filename).read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"catalog/data/{filename}: {exc}") from None
    return {_normalise(k): _build(cls, _normalise(k), v, filename) for k, v in data.items()}


@functools.cache
def accelerators() -> dict[str, AcceleratorSpec]:
    """All accelerator specs by name (immutable specs; do not mutate the dict)."""
    return _load_file("accelerators.toml", AcceleratorSpec)


@functools.cache
def systems() -> dict[str, SystemSpec]:
    """All system specs by name; each names an accelerator that exists."""
    out = _load_file("systems.toml", SystemSpec)
    accs = accelerators()
    for s in out.values():
        if s.accelerator not in accs:
            raise CatalogError(f"systems.toml.{s.name}.accelerator: unknown accelerator {s.accelerator!r}")
        if s.domain_cards % s.cards_per_node:
            raise CatalogError(f"systems.toml.{s.name}: domain_cards must be a multiple of cards_per_node")
    return out


def _lookup(table: dict[str, T], name: str, kind: str) -> T:
    key = _normalise(str(name))
    try:
        return table[key]
    except KeyError:
        raise CatalogError(f"unknown {kind} {name!r}; known: {', '.join(sorted(table))}") from None


def accelerator(name: str) -> AcceleratorSpec:
    """Look up an accelerator by name (case- and underscore-insensitive)."""
    return _lookup(accelerators(), name, "accelerator")


def system(name: str) -> SystemSpec:
    """Look up a server / scale-up system by name."""
    return _lookup(systems(), name, "system")


# ---- scale-out and DCI fabrics (used by the topology layer) --------------------------------
from .fabrics import FabricSpec  # noqa: E402

__all__ += ["FabricSpec", "fabric", "fabrics"]


@functools.cache
def fabrics() -> dict[str, FabricSpec]:
    """All scale-out / DCI fabric kinds by name (``ib-ndr``, ``roce``, ``ethernet``, ...)."""
    return _load_file("fabrics.toml", FabricSpec)


def fabric(name: str) -> FabricSpec:
    """Look up a fabric by name (case- and underscore-insensitive: ``ib_ndr`` = ``ib-ndr``)."""
    return _lookup(fabrics(), name, "fabric")
