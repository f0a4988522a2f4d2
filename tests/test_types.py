"""``mypy cluster_sim`` is clean (config in pyproject.toml [tool.mypy]; stubs from the dev extra).

Takes ~15 s on a cold cache on two shared cores, ~2 s warm (cache in ``.mypy_cache``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_mypy_package_has_no_errors(monkeypatch):
    try:
        from mypy import api
    except ImportError:
        pytest.fail("mypy is not installed; run `make test` (installs the dev extras)")
    monkeypatch.chdir(REPO)  # the config's cache_dir and files are relative to the repo root
    stdout, stderr, status = api.run(["--config-file", str(REPO / "pyproject.toml"), "cluster_sim"])
    assert status == 0, f"mypy found errors:\n{stdout}{stderr}"
    assert "Success: no issues found" in stdout, stdout
