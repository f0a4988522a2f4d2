"""Experiment configuration: schema (pydantic) and loader (YAML/TOML + dotted overrides)."""

from .load import apply_overrides, load_config, read_mapping, resolve_path, traces_dir
from .schema import ExperimentConfig, PolicyRef

__all__ = ["ExperimentConfig", "PolicyRef", "apply_overrides", "load_config", "read_mapping",
           "resolve_path", "traces_dir"]
