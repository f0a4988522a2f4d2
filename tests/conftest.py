"""Shared pytest configuration: ``--runslow`` opts into long scenarios."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TRACES = Path(os.environ.get("CLUSTER_SIM_TRACES", REPO.parent / "shared" / "traces"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", default=False, help="run slow scenarios")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--runslow"):
        # -m 'not slow' comes from addopts; --runslow lifts it.
        config.option.markexpr = ""


@pytest.fixture(scope="session")
def repo() -> Path:
    """The repository root."""
    return REPO


@pytest.fixture(scope="session")
def traces() -> Path:
    """The shared traces folder (skip when it is not beside the repo)."""
    if not TRACES.is_dir():
        pytest.skip(f"traces not found at {TRACES}; set CLUSTER_SIM_TRACES")
    return TRACES
