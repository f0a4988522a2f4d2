"""The ``>>>`` examples in the package's docstrings run, from the repository root, and pass.

Every module under ``cluster_sim/`` whose source contains ``>>>`` is collected (new ones join
automatically). Examples run with ELLIPSIS and NORMALIZE_WHITESPACE; paths in them are relative
to the repository root (``topologies/...``, ``workloads/...``).
"""

from __future__ import annotations

import doctest
import importlib
import types
from pathlib import Path

import matplotlib
import pytest

REPO = Path(__file__).resolve().parents[1]
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

matplotlib.use("Agg")  # examples that draw must not need a display


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = sorted(_module_name(p) for p in (REPO / "cluster_sim").rglob("*.py")
                 if ">>>" in p.read_text(encoding="utf-8"))


def run_doctests(module: types.ModuleType) -> tuple[doctest.TestResults, int, str]:
    """(results, examples found including skipped ones, the failure report) for ``module``."""
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report: list[str] = []
    found = 0
    for test in doctest.DocTestFinder().find(module, module.__name__):
        found += len(test.examples)
        runner.run(test, out=report.append)
    return runner.summarize(verbose=False), found, "".join(report)


def test_modules_with_examples_are_collected():
    assert len(MODULES) >= 25, MODULES
    assert {"cluster_sim.units", "cluster_sim.perf.memory", "cluster_sim.experiment.run"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_doctests_pass(name, monkeypatch):
    monkeypatch.chdir(REPO)
    results, found, report = run_doctests(importlib.import_module(name))
    # a '>>>' that the doctest finder does not see (e.g. outside a docstring) is not an example
    assert found > 0, f"{name} contains '>>>' but no doctest examples were found"
    assert results.failed == 0, f"{results.failed} of {results.attempted} examples failed in {name}:\n{report}"


def test_a_failing_example_is_reported():
    """The harness itself can fail: a wrong expected output is counted and shown."""
    mod = types.ModuleType("fake_doc_module", ">>> 1 + 1\n3\n")
    results, found, report = run_doctests(mod)
    assert (results.failed, results.attempted, found) == (1, 1, 1)
    assert "Expected:\n    3\nGot:\n    2" in report
