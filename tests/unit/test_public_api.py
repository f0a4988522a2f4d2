"""The curated public API in ``cluster_sim/__init__.py``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import cluster_sim as cs

REPO = Path(__file__).resolve().parents[2]


def test_all_is_strings_and_every_name_resolves():
    assert all(isinstance(n, str) for n in cs.__all__)
    assert len(set(cs.__all__)) == len(cs.__all__)
    for name in cs.__all__:
        assert getattr(cs, name) is not None, name
    assert set(cs.__all__) <= set(dir(cs))


def test_core_names_are_the_real_objects():
    from cluster_sim.config import load_config
    from cluster_sim.experiment import Result, simulate
    from cluster_sim.perf.training import estimate_step, scaling_curve
    from cluster_sim.policies import registry

    assert cs.simulate is simulate and cs.Result is Result and cs.load_config is load_config
    assert cs.estimate_step is estimate_step and cs.scaling_curve is scaling_curve
    assert cs.registries is registry and callable(cs.registries.make)
    assert cs.model("llama3-70b").layers == 80
    assert cs.catalog.accelerator("h100-sxm").name == "h100-sxm"
    assert cs.ParallelPlan(tp=8, pp=4, dp=16, microbatches=32).cards == 512


def test_unknown_attribute():
    with pytest.raises(AttributeError, match="no attribute 'simulat'"):
        cs.simulat  # noqa: B018


def test_importing_a_submodule_stays_light():
    code = "import sys, cluster_sim.units; print('pandas' in sys.modules, 'matplotlib' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert res.stdout.split() == ["False", "False"], res.stderr


def test_simulate_from_the_top_level(tmp_path):
    cfg = cs.load_config({"cluster": {"topology": {"builder": "fat_tree", "system": "hgx-h100", "nodes": 1}},
                          "training": {"jobs": [{"name": "a", "model": "llama3-8b", "cards": 8,
                                                 "parallel": {"tp": 8}}]}})
    res = cs.simulate(cfg)
    assert isinstance(res, cs.Result) and 0 < res.summary["training.mfu"] < 1
