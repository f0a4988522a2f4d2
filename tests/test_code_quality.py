"""The repo's own rules, checked in the suite: ruff, the import-layer contract, no globals RNG."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _tool(name: str) -> str:
    exe = Path(sys.executable).with_name(name)
    found = str(exe) if exe.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed; run `make test` (installs the dev extras)")
    return found


def test_ruff_clean():
    res = subprocess.run([_tool("ruff"), "check", "."], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_import_layers():
    res = subprocess.run([_tool("lint-imports")], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_no_module_level_randomness():
    pat = re.compile(r"(np|numpy)\.random\.(seed|rand|randn|randint|choice|normal|exponential|uniform|"
                     r"poisson|shuffle|gamma|lognormal)\(|(^|[^.\w])random\.(seed|random|randint|choice|"
                     r"uniform|expovariate|gauss|shuffle)\(")
    bad = [f"{p.relative_to(REPO)}:{i}" for p in (REPO / "cluster_sim").rglob("*.py")
           for i, line in enumerate(p.read_text().splitlines(), 1) if pat.search(line)]
    assert not bad, f"use the run's named Generator streams (cluster_sim.rng): {bad}"


def test_no_machine_paths_in_repo():
    res = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True)
    bad = []
    for name in res.stdout.split():
        p = REPO / name
        if p.suffix in {".py", ".md", ".yaml", ".toml", ".cfg"} and p.is_file():
            text = p.read_text(errors="ignore")
            if re.search(r"/(root|home/\w+|work/main)/", text):
                bad.append(name)
    assert not bad, bad


def test_every_hypothesis_test_has_a_finite_deadline():
    """A hang is a bug: a ``deadline`` of ``None`` would turn one into a hung suite instead of a failure."""
    bad = [f"{p.relative_to(REPO)}:{i}" for p in (REPO / "tests").rglob("*.py")
           for i, line in enumerate(p.read_text().splitlines(), 1)
           if re.search(r"deadline\s*=\s*None", line) and "re.search" not in line]
    assert not bad, f"give these hypothesis settings a finite deadline: {bad}"


def test_pytest_fails_hung_tests():
    """pytest-timeout is configured, so a test that hangs fails with its stack instead of stalling CI."""
    text = (REPO / "pyproject.toml").read_text()
    assert re.search(r"^timeout\s*=\s*\d+", text, re.M), "set [tool.pytest.ini_options] timeout"
    assert "pytest-timeout" in text


def test_mypy_config_checks_against_stubs_not_global_ignores():
    """Missing stubs are ignored per module only, and the dev extra installs the stub packages."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())
    mypy = cfg["tool"]["mypy"]
    assert "ignore_missing_imports" not in mypy, "ignore missing imports per module ([[tool.mypy.overrides]])"
    ignored = {m for o in mypy.get("overrides", []) if o.get("ignore_missing_imports") for m in o["module"]}
    assert not ignored & {"pandas", "yaml", "networkx", "pyarrow", "numpy", "simpy"}, ignored
    dev = " ".join(cfg["project"]["optional-dependencies"]["dev"])
    for stubs in ("pandas-stubs", "types-PyYAML", "types-networkx", "pyarrow-stubs"):
        assert stubs in dev, f"{stubs} missing from the dev extra"
