"""Experiment configuration: schema (pydantic) and loader (YAML/TOML + dotted overrides)."""

from .load import (
           apply_overrides,
           load_config,
           read_mapping,
           resolve_path,
           traces_dir,
           user_catalogs,
)
from .schema import ExperimentConfig, PolicyRef
from .user_catalog import user_scope

__all__ = ["ExperimentConfig", "PolicyRef", "apply_overrides", "load_config", "read_mapping",
           "resolve_path", "traces_dir", "user_catalogs", "user_scope"]
