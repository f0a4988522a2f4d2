"""Load an experiment file (YAML or TOML), apply ``--set a.b=c`` overrides, validate once.

>>> cfg = load_config({"cluster": {"topology": "topologies/h100-rail-1024.yaml"}},
...                   overrides={"seed": "7", "duration": "2h"})
>>> cfg.seed, cfg.duration
(7, 7200.0)
"""

from __future__ import annotations

import copy
import logging
import os
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from .. import catalog, shipped
from ..catalog import Catalog
from ..errors import CatalogError, ConfigError
from ..topology.safe_load import (
    InputProblem,
    check_path_text,
    check_tree,
    parse_toml,
    parse_yaml,
    printable,
    read_text,
)
from ..workload.traces.common import TRACES_ENV, traces_dir
from .schema import ExperimentConfig

log = logging.getLogger(__name__)

__all__ = ["apply_overrides", "load_config", "read_mapping", "resolve_path", "traces_dir", "user_catalogs"]


def read_mapping(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML or TOML file into a dict; any problem names the file (and line).

    The file must be a regular UTF-8 file of at most 4 MiB; YAML is read under the limits of
    :mod:`cluster_sim.topology.safe_load` (depth, alias expansion, integer digits, safe tags).
    """
    p = Path(path)
    try:
        text = read_text(p)
        data = parse_toml(text) if p.suffix == ".toml" else parse_yaml(text)
    except InputProblem as exc:
        raise ConfigError(exc.format(str(p))) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def _parse_value(key: str, raw: str) -> Any:
    """A ``--set`` value parsed as one YAML value under the file limits."""
    try:
        return parse_yaml(raw)
    except InputProblem as exc:
        raise ConfigError(f"--set {key}: {exc.what}: {exc.detail}") from None


def apply_overrides(data: dict[str, Any], overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return a copy of ``data`` with dotted-key overrides applied.

    String values are parsed as YAML scalars/lists (``"7"`` -> 7, ``"[1,2]"`` -> [1, 2]);
    ``training.jobs.0.cards`` indexes lists.
    """
    out = copy.deepcopy(data)
    for key, raw in (overrides or {}).items():
        value = _parse_value(key, raw) if isinstance(raw, str) else raw
        if (isinstance(raw, str) and isinstance(value, (int, float)) and not isinstance(value, bool)
                and raw.strip() != str(value)):
            value = raw if any(c.isalpha() for c in raw) else value
        parts = key.split(".")
        if not all(p.strip() for p in parts):
            raise ConfigError(f"--set {key}: empty field name in the dotted path")
        node: Any = out
        for i, part in enumerate(parts):
            here = ".".join(parts[:i]) or "(top level)"
            last = i == len(parts) - 1
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise ConfigError(f"--set {key}: no list item {part!r} in {here} "
                                      f"({len(node)} item{'s' if len(node) != 1 else ''})")
                if last:
                    node[int(part)] = value
                else:
                    node = node[int(part)]
                continue
            if not isinstance(node, dict):
                raise ConfigError(f"--set {key}: {here} is {node!r:.40} ({type(node).__name__}), "
                                  f"not a mapping or list; cannot set {part!r} in it")
            if last:
                node[part] = value
                continue
            nxt = parts[i + 1]
            if part not in node or node[part] is None:
                node[part] = [] if nxt.isdigit() else {}
            elif isinstance(node[part], str) and not nxt.isdigit():
                node[part] = {"name": node[part]}  # policy given by name: extend to {name, params}
            node = node[part]
    return out


def _loc(loc: tuple[Any, ...]) -> str:
    s = ""
    for part in loc:
        if isinstance(part, int):
            s += f"[{part}]"
        elif part in {"str", "constrained-str", "dict[str,any]", "function-after[_from_name(), PolicyRef]"}:
            continue
        else:
            s += ("." if s else "") + str(part)
    return s or "(top level)"


def _fields_at(loc: tuple[Any, ...]) -> list[str]:
    """Known field names of the model that holds ``loc[-1]`` (best effort)."""
    model: Any = ExperimentConfig
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or part not in model.model_fields:
            return []
        model = _model_of(model.model_fields[part].annotation)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return sorted(model.model_fields)
    return []


def _model_of(annotation: Any) -> Any:
    stack = [annotation]
    while stack:
        a = stack.pop()
        if isinstance(a, type) and issubclass(a, BaseModel):
            return a
        stack.extend(typing.get_args(a))
    return None


def _format_error(exc: ValidationError, source: str) -> str:
    err = exc.errors()[0]
    loc = tuple(err["loc"])
    where = _loc(loc)
    if err["type"] == "extra_forbidden":
        known = _fields_at(loc)
        hint = f"; known: {', '.join(known)}" if known else ""
        msg = f"unknown field{hint}"
    elif err["type"] == "missing":
        msg = "required field is missing"
    else:
        msg = err["msg"].removeprefix("Value error, ")
        if "input" in err and err["type"] not in ("value_error",):
            msg += f" (got {err['input']!r})"
    more = len(exc.errors()) - 1
    tail = f" (+{more} more error{'s' if more > 1 else ''})" if more else ""
    return f"{source}: {where}: {msg}{tail}"


def load_config(
    source: str | os.PathLike[str] | Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
) -> ExperimentConfig:
    """Load, override and validate an experiment.

    Parameters
    ----------
    source : path or mapping
        A YAML/TOML experiment file, or the same content as a dict.
    overrides : mapping, optional
        Dotted keys to values (``{"policy.training.placement": "spread"}``).

    Raises
    ------
    ConfigError
        With the file name and the dotted path of the first bad field.
    """
    try:
        return _load(source, overrides)
    except ConfigError as exc:  # keys, values and file names are echoed: keep it one line
        raise ConfigError(printable(str(exc))) from None


def _load(source: str | os.PathLike[str] | Mapping[str, Any], overrides: Mapping[str, Any] | None) -> ExperimentConfig:
    if isinstance(source, Mapping):
        data, name, base = dict(source), "<config>", Path.cwd()
        try:
            check_tree(data)
        except InputProblem as exc:
            raise ConfigError(exc.format(name)) from None
    else:
        path = _experiment_file(source)
        data, name, base = read_mapping(path), str(source), path.resolve().parent
    data = apply_overrides(data, overrides)
    data.setdefault("base_dir", str(base))
    try:
        cfg = ExperimentConfig.model_validate(data)
        user_catalogs(cfg)  # the user's cards are checked at load, like every other field
    except ValidationError as exc:
        raise ConfigError(_format_error(exc, name)) from None
    except ConfigError as exc:  # a cross-field check that names its own path (policies, limits)
        raise ConfigError(f"{name}: {exc}") from None
    log.info("%s: experiment %r, seed %d, %d override(s), paths relative to %s", name, cfg.name, cfg.seed,
             len(overrides or {}), base)
    return cfg


def user_catalogs(cfg: ExperimentConfig) -> tuple[Catalog, ...]:
    """Load and validate every file of ``cfg.catalog`` (paths resolve like any config path).

    Raises
    ------
    ConfigError
        ``catalog[i]: <file>: <section>.<entry>.<field>: <problem>`` for the first bad entry.
    """
    out: list[Catalog] = []
    merged = catalog.shipped()
    for i, path in enumerate(cfg.catalog):
        try:
            cat = catalog.load_catalog(resolve_path(path, cfg.base_dir))
            merged = merged.merged(cat)  # two user files may not define the same name either
        except (CatalogError, ConfigError) as exc:
            raise ConfigError(f"catalog[{i}]: {exc}") from None
        out.append(cat)
    return tuple(out)


def _experiment_file(source: str | os.PathLike[str]) -> Path:
    """``source`` when it exists, else the shipped workload it names (``"demo"``,
    ``"workloads/demo.yaml"``: :mod:`cluster_sim.shipped`); an unknown name is read as the file
    it names, so its error is the file's (``x.yaml: no such file``)."""
    path = Path(source)
    if _exists(path, source):
        return path
    found = shipped.find(source, "workloads")
    if found is None:
        if len(path.parts) == 1 and not path.suffix:  # a bare name: say which names there are
            shipped.require(source, "workloads", "workload")
        return path
    log.debug("%s: the shipped workload %s", os.fspath(source), found)
    return found


def resolve_path(path: str | os.PathLike[str], base_dir: str | os.PathLike[str] = ".") -> Path:
    """Find a file named in a config.

    Tried in order: absolute; relative to ``base_dir`` and each of its parents (so
    ``topologies/x.yaml`` works from ``workloads/``); relative to the working directory;
    a ``.../shared/traces/...`` path re-rooted at :func:`traces_dir` (``$CLUSTER_SIM_TRACES``,
    ``--traces DIR``); a ``topologies/...`` or ``workloads/...`` path among the shipped files
    (:mod:`cluster_sim.shipped`, so shipped workloads work outside the repository).
    """
    try:
        check_path_text(path)
    except InputProblem as exc:
        raise ConfigError(exc.format(_shown(path))) from None
    p = Path(path)
    if p.is_absolute():
        if _exists(p, path):
            return p
    else:
        base = Path(base_dir).resolve()
        for root in (base, *base.parents, Path.cwd()):
            cand = root / p
            if _exists(cand, path):
                return cand
    parts = p.parts
    if "traces" in parts:
        tdir = traces_dir()
        cand = tdir.joinpath(*parts[parts.index("traces") + 1:])
        if _exists(cand, path):
            return cand
        raise ConfigError(f"{_shown(path)}: trace file not found (looked relative to {base_dir}, the working "
                          f"directory and the traces folder {_shown(tdir)}; point ${TRACES_ENV} or "
                          "--traces DIR at the folder holding the public traces)")
    found = shipped.find(p, "topologies") if not p.is_absolute() else None
    if found is not None:
        log.debug("%s: the shipped file %s", _shown(path), found)
        return found
    raise ConfigError(f"{path}: file not found (looked relative to {base_dir} and the working directory)")


def _shown(path: str | os.PathLike[str]) -> str:
    text = os.fspath(path)
    return text if len(text) <= 80 else f"{text[:60]}...{text[-17:]}"


def _exists(cand: Path, path: str | os.PathLike[str]) -> bool:
    try:
        return cand.exists()
    except OSError as exc:  # e.g. a resolved path longer than the system allows
        raise ConfigError(f"{_shown(path)}: cannot look up {_shown(cand)}: {exc.strerror}") from None
