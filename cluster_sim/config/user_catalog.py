"""An experiment's own models and cards: the ``models:`` and ``catalog:`` sections in scope.

>>> from cluster_sim.config import load_config
>>> from cluster_sim.workload.models import model
>>> cfg = load_config({"cluster": {"topology": "topologies/h100-rail-1024.yaml"},
...                    "models": {"tiny": {"layers": 2, "hidden": 256, "heads": 4, "vocab": 1000,
...                                        "source": "example"}}})
>>> with user_scope(cfg):
...     model("tiny").head_dim
64

Inside ``with user_scope(cfg):`` every lookup (``workload.models.model``,
``catalog.accelerator``/``system``/``fabric``) sees the experiment's inline models and the
entries of its user catalog files, in this context only: another run in the same process, before,
after or beside it, sees only the shipped data.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from .. import catalog
from ..errors import CatalogError, ConfigError
from ..workload import models as _models
from .load import user_catalogs
from .schema import ExperimentConfig

__all__ = ["user_catalogs", "user_scope"]


@contextlib.contextmanager
def user_scope(cfg: ExperimentConfig) -> Iterator[None]:
    """Make ``cfg``'s inline models and user catalogs visible to every lookup in the block."""
    cats = user_catalogs(cfg)
    try:
        specs = _models.inline_models(cfg.models, "models")
    except CatalogError as exc:
        raise ConfigError(str(exc)) from None
    with catalog.use(*cats), _models.use(specs):
        yield
