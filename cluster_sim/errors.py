"""One exception family for everything a user can get wrong.

The CLI turns any :class:`ClusterSimError` into one line on stderr and exit code 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = [
    "CatalogError",
    "ClusterSimError",
    "ConfigError",
    "PerfModelError",
    "PlacementError",
    "TopologyError",
    "TraceError",
    "UnitError",
]


class ClusterSimError(Exception):
    """Base class of every error caused by user input (configs, traces, topologies)."""


class UnitError(ClusterSimError, ValueError):
    """A quantity string ("80 GiB", "400 Gbps", "7d") could not be parsed."""


class ConfigError(ClusterSimError):
    """An experiment, plan or policy configuration is invalid (message names the field path)."""


class CatalogError(ClusterSimError):
    """Unknown accelerator/system/model name, or a malformed catalog data file."""


class TopologyError(ClusterSimError):
    """A topology is malformed: disconnected accelerators, unknown builder, bad link."""


class TraceError(ClusterSimError):
    """A trace file is missing columns or has unparseable rows (message names file and line)."""


class PlacementError(ClusterSimError):
    """A placement decision is invalid: over-allocation, unknown card, plan does not fit."""


class PerfModelError(ClusterSimError):
    """A performance model was asked for something it cannot compute (plan does not fit...)."""
