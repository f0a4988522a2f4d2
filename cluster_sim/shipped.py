"""The topologies, workloads and examples that ship with cluster_sim, found by name.

In the repository they are the top-level folders ``topologies/``, ``workloads/`` and
``examples/`` (the one copy in git); an installed wheel carries the same files as package data
in ``cluster_sim/_shipped/`` (``[tool.hatch.build.targets.wheel.force-include]`` in
pyproject.toml). So ``cluster-sim topology show h100-rail-1024``, ``cluster-sim demo`` and
``cs.load_config("demo")`` work from any directory, installed or not.

>>> find("h100-rail-1024", "topologies").name
'h100-rail-1024.yaml'
>>> find("workloads/demo.yaml", "workloads").name
'demo.yaml'
>>> find("no-such-name", "topologies") is None
True
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ConfigError

__all__ = ["KINDS", "SUFFIXES", "find", "names", "require", "shipped_dir", "shipped_root"]

KINDS = ("topologies", "workloads", "examples")
"""The shipped folders."""

SUFFIXES = (".yaml", ".yml", ".toml")
"""Suffixes of a shipped topology or workload file (a bare name means ``<name>.yaml``)."""


def shipped_root() -> Path:
    """The folder holding :data:`KINDS`: ``cluster_sim/_shipped`` in a wheel, else the repository."""
    pkg = Path(__file__).resolve().parent
    inside = pkg / "_shipped"
    return inside if inside.is_dir() else pkg.parent


def shipped_dir(kind: str) -> Path:
    """The shipped folder of ``kind`` (one of :data:`KINDS`)."""
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r}: expected one of {', '.join(KINDS)}")
    return shipped_root() / kind


def names(kind: str) -> list[str]:
    """The shipped names of ``kind`` (file stems, sorted): what :func:`find` accepts bare."""
    folder = shipped_dir(kind)
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.iterdir() if p.suffix in SUFFIXES and p.is_file())


def find(text: str | os.PathLike[str], kind: str) -> Path | None:
    """The shipped file that ``text`` names, or None.

    ``text`` is a bare name (``h100-rail-1024``, ``demo.yaml``: looked up in ``kind``'s folder)
    or a relative path under one of the shipped folders (``topologies/h100-rail-1024.yaml``).
    Absolute paths and any other relative path are never shipped files.
    """
    p = Path(text)
    if p.is_absolute() or not p.parts or ".." in p.parts:
        return None
    if len(p.parts) == 1:
        name = p.name if p.suffix in SUFFIXES else f"{p.name}.yaml"
        cand = shipped_dir(kind) / name
    elif p.parts[0] in KINDS:
        cand = shipped_root().joinpath(*p.parts)
    else:
        return None
    return cand if cand.is_file() else None


def require(text: str | os.PathLike[str], kind: str, what: str) -> Path:
    """:func:`find`, or one :class:`ConfigError` naming ``text`` and the shipped choices."""
    found = find(text, kind)
    if found is not None:
        return found
    have = names(kind)
    listed = ", ".join(have) if have else f"none found in {shipped_dir(kind)}"
    raise ConfigError(f"{os.fspath(text)}: no such file, and not a shipped {what} (shipped: {listed})")
