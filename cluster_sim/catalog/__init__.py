"""Hardware catalog: accelerators and systems as data files with sources.

>>> from cluster_sim import catalog
>>> catalog.accelerator("h100-sxm").bf16_tflops_dense
989.4
>>> catalog.system("cloudmatrix384").domain_cards
384

A user's own cards, systems and fabrics come from a TOML file in the shipped format under
``[accelerators.<name>]``, ``[systems.<name>]`` and ``[fabrics.<name>]`` tables
(:func:`load_catalog`, validated by the same code as the shipped data). They are visible to
every lookup inside ``with catalog.use(user):`` and nowhere else: the scope is a context
variable, so two runs in one process never see each other's cards.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import math
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from ..errors import CatalogError
from .accelerators import AcceleratorSpec
from .fabrics import FabricSpec
from .nodes import SystemSpec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "AcceleratorSpec",
    "Catalog",
    "FabricSpec",
    "SystemSpec",
    "accelerator",
    "accelerators",
    "active",
    "fabric",
    "fabrics",
    "load_catalog",
    "shipped",
    "system",
    "systems",
    "use",
]

CONFIDENCE_TAGS = ("V", "S", "R", "D", "U")
MAX_CATALOG_BYTES = 4 * 2**20
SECTIONS = ("accelerators", "systems", "fabrics")
T = TypeVar("T")


def _normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(" ", "-")


def _unit_hint(key: str, fields: Mapping[str, Any]) -> str:
    """``hbm = 80`` -> a hint naming the unit-qualified fields (``hbm_gb``, ``hbm_tbyte_s``)."""
    stem = key.lower().rstrip("_")
    near = sorted(f for f in fields if f.startswith(stem + "_")
                  and not f.endswith(("_efficiency", "_fraction")))  # unitless factors
    return f" (units are part of the field name: did you mean {' or '.join(near)}?)" if near else ""


def _build(cls: type[T], name: str, raw: dict[str, Any], where: str) -> T:
    """One catalog entry from its TOML table; every problem names ``where.name.field``."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    if not isinstance(raw, dict):
        raise CatalogError(f"{where}.{name}: expected a table of fields, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise CatalogError(f"{where}.{name}.{unknown[0]}: unknown field{_unit_hint(unknown[0], fields)}; "
                           f"known: {', '.join(sorted(fields))}")
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
        if f.type in ("float", "int"):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise CatalogError(f"{where}.{name}.{key}: expected a number, got {value!r:.60}"
                                   + (" (units are part of the field name; give a bare number)"
                                      if isinstance(value, str) else ""))
            if not math.isfinite(value) or value < 0:
                raise CatalogError(f"{where}.{name}.{key}: must be a finite number >= 0, got {value!r}")
            if f.type == "int" and value != int(value):
                raise CatalogError(f"{where}.{name}.{key}: expected a whole number, got {value!r}")
        elif f.type == "str" and not isinstance(value, str):
            raise CatalogError(f"{where}.{name}.{key}: expected a string, got {value!r:.60}")
        elif key == "field_sources" and not (isinstance(value, dict) and all(
                k in fields and isinstance(v, str) for k, v in value.items())):
            raise CatalogError(f"{where}.{name}.field_sources: expected a table of field = \"source\"")
    values = {k: int(v) if fields[k].type == "int" else v for k, v in raw.items()}
    try:
        return cls(name=name, **values)  # type: ignore[call-arg]
    except ValueError as exc:  # a spec's own range check (e.g. a fabric's efficiency)
        raise CatalogError(f"{where}.{name}: {exc}") from None


def _entries(data: Any, cls: type[T], where: str) -> dict[str, T]:
    if not isinstance(data, dict):
        raise CatalogError(f"{where}: expected a table of entries, got {type(data).__name__}")
    out: dict[str, T] = {}
    for k, v in data.items():
        key = _normalise(str(k))
        if key in out:
            raise CatalogError(f"{where}.{k}: duplicate entry (names are case- and underscore-insensitive)")
        out[key] = _build(cls, key, v, where)
    return out


def _check_systems(out: Mapping[str, SystemSpec], accs: Mapping[str, AcceleratorSpec], where: str) -> None:
    """Every system names an accelerator that exists and holds whole nodes per domain."""
    for s in out.values():
        if s.accelerator not in accs:
            raise CatalogError(f"{where}.{s.name}.accelerator: unknown accelerator {s.accelerator!r}")
        if s.cards_per_node < 1 or s.domain_cards < 1:
            raise CatalogError(f"{where}.{s.name}: cards_per_node and domain_cards must be >= 1")
        if s.domain_cards % s.cards_per_node:
            raise CatalogError(f"{where}.{s.name}: domain_cards must be a multiple of cards_per_node")


def _load_file(filename: str, cls: type[T]) -> dict[str, T]:
    text = resources.files(__package__).joinpath("data").joinpath(filename).read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"catalog/data/{filename}: {exc}") from None
    return _entries(data, cls, filename)


@dataclass(frozen=True)
class Catalog:
    """A set of cards, systems and fabrics (read-only mappings by normalised name)."""

    accelerators: Mapping[str, AcceleratorSpec]
    systems: Mapping[str, SystemSpec]
    fabrics: Mapping[str, FabricSpec]
    source: str = "shipped"

    def merged(self, other: Catalog) -> Catalog:
        """This catalog plus ``other``; a name in both is an error (no silent override)."""
        parts = {}
        for section in SECTIONS:
            mine, theirs = getattr(self, section), getattr(other, section)
            clash = sorted(set(mine) & set(theirs))
            if clash:
                raise CatalogError(f"{other.source}: {section}.{clash[0]}: already defined in {self.source}; "
                                   "give your entry another name (a what-if variant needs its own name)")
            parts[section] = MappingProxyType({**mine, **theirs})
        return Catalog(**parts, source=f"{self.source} + {other.source}")


@functools.cache
def shipped() -> Catalog:
    """The catalog shipped in ``catalog/data/``."""
    accs = _load_file("accelerators.toml", AcceleratorSpec)
    syss = _load_file("systems.toml", SystemSpec)
    _check_systems(syss, accs, "systems.toml")
    fabs = _load_file("fabrics.toml", FabricSpec)
    return Catalog(MappingProxyType(accs), MappingProxyType(syss), MappingProxyType(fabs))


def load_catalog(path: str | os.PathLike[str]) -> Catalog:
    """Read a user catalog TOML (``[accelerators.x]``, ``[systems.x]``, ``[fabrics.x]``).

    Entries are validated exactly like the shipped data; a user system may name a shipped or a
    user accelerator. Problems raise one :class:`CatalogError` naming ``file: section.entry.field``.
    """
    p = Path(path)
    try:
        if p.stat().st_size > MAX_CATALOG_BYTES:
            raise CatalogError(f"{p}: catalog file larger than {MAX_CATALOG_BYTES // 2**20} MiB")
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(f"{p}: cannot read catalog file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise CatalogError(f"{p}: catalog file is not UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{p}: {exc}") from None
    extra = sorted(set(data) - set(SECTIONS))
    if extra:
        raise CatalogError(f"{p}: {extra[0]}: unknown section; a catalog file has {', '.join(SECTIONS)}")
    if not any(data.get(s) for s in SECTIONS):
        raise CatalogError(f"{p}: no entries (expected [accelerators.<name>], [systems.<name>] or "
                           "[fabrics.<name>] tables)")
    accs = _entries(data.get("accelerators", {}), AcceleratorSpec, f"{p}: accelerators")
    syss = _entries(data.get("systems", {}), SystemSpec, f"{p}: systems")
    fabs = _entries(data.get("fabrics", {}), FabricSpec, f"{p}: fabrics")
    user = Catalog(MappingProxyType(accs), MappingProxyType(syss), MappingProxyType(fabs), source=str(p))
    _check_systems(syss, {**shipped().accelerators, **accs}, f"{p}: systems")
    shipped().merged(user)  # name clashes with shipped entries are errors
    return user


_ACTIVE: contextvars.ContextVar[Catalog | None] = contextvars.ContextVar("cluster_sim_catalog", default=None)


def active() -> Catalog:
    """The catalog lookups see now: shipped, plus the user catalog of the enclosing :func:`use`."""
    return _ACTIVE.get() or shipped()


@contextlib.contextmanager
def use(*user: Catalog) -> Iterator[Catalog]:
    """Make user catalogs visible to every lookup inside the ``with`` block (this context only).

    The block sees the shipped catalog plus ``user``, never the entries of an enclosing block:
    a run nested in another run's scope sees only its own cards.
    """
    cat = shipped()
    for u in user:
        cat = cat.merged(u)
    token = _ACTIVE.set(cat)
    try:
        yield cat
    finally:
        _ACTIVE.reset(token)


def accelerators() -> Mapping[str, AcceleratorSpec]:
    """All accelerator specs by name (read-only)."""
    return active().accelerators


def systems() -> Mapping[str, SystemSpec]:
    """All system specs by name; each names an accelerator that exists."""
    return active().systems


def fabrics() -> Mapping[str, FabricSpec]:
    """All scale-out / DCI fabric kinds by name (``ib-ndr``, ``roce``, ``ethernet``, ...)."""
    return active().fabrics


def _lookup(table: Mapping[str, T], name: str, kind: str) -> T:
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


def fabric(name: str) -> FabricSpec:
    """Look up a fabric by name (case- and underscore-insensitive: ``ib_ndr`` = ``ib-ndr``)."""
    return _lookup(fabrics(), name, "fabric")
