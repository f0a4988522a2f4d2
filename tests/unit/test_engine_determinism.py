"""Determinism: the same scenario twice in one process, and under another PYTHONHASHSEED, gives
identical per-job records."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from integration.test_cluster_golden import SCENARIO, jobs_digest
from cluster_sim.experiment.drivers import run_training
scen = dict(SCENARIO, duration="5d")
scen["training"] = {{"generator": dict(SCENARIO["training"]["generator"], n_jobs=250)}}
print(jobs_digest(run_training(scen).jobs))
"""


def _digest(hashseed: str) -> str:
    env = dict(os.environ, PYTHONHASHSEED=hashseed)
    out = subprocess.run([sys.executable, "-c", SCRIPT.format(tests=str(REPO / "tests"))], cwd=REPO, env=env,
                         capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def test_same_records_under_different_hash_seeds():
    a = _digest("0")
    b = _digest("12345")
    assert a == b and len(a) == 64


def test_same_records_twice_in_process():
    sys.path.insert(0, str(REPO / "tests"))
    from integration.test_cluster_golden import SCENARIO, jobs_digest

    from cluster_sim.experiment.drivers import run_training

    scen = dict(SCENARIO, duration="3d")
    scen["training"] = {"generator": dict(SCENARIO["training"]["generator"], n_jobs=150)}
    assert jobs_digest(run_training(scen).jobs) == jobs_digest(run_training(scen).jobs)
