"""experiment/build.py is the one config -> engine step: the topology is loaded once per run and
the engine never imports the config."""

from __future__ import annotations

from pathlib import Path

import cluster_sim.experiment.build as build_mod
import cluster_sim.experiment.cluster as cluster_mod
import cluster_sim.topology as topology_pkg
from cluster_sim.experiment import simulate

REPO = Path(__file__).resolve().parents[2]


def _count_loads(monkeypatch) -> list[object]:
    calls: list[object] = []
    real = topology_pkg.load_topology

    def counting(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    # every name a loader is reached by (the engine used to import it inside its builder)
    for mod in (topology_pkg, cluster_mod, build_mod):
        monkeypatch.setattr(mod, "load_topology", counting, raising=False)
    return calls


def test_simulate_loads_the_topology_once(monkeypatch):
    calls = _count_loads(monkeypatch)
    res = simulate(REPO / "workloads/train_llama3_70b.yaml")
    assert res.summary["sources"]["training.jobs.*"] == "cluster engine"   # the engine ran
    assert len(calls) == 1    # estimates, the cluster engine and serving share one load


def test_cluster_engine_runs_on_a_multi_site_file_from_another_folder(tmp_path):
    # two-dc-300km.yaml names its sites relative to its own folder; the engine used to reload it
    # relative to the experiment's folder and fail after the estimates had worked
    topo = REPO / "topologies/two-dc-300km.yaml"
    exp = tmp_path / "exp.yaml"
    exp.write_text(f"name: x\nseed: 1\ncluster: {{topology: {topo}}}\ntraining:\n  generator:\n"
                   "    kind: uniform\n    n_jobs: 20\n    jobs_per_hour: 3600\n"
                   "    params: {mean_duration_s: 30.0}\n")
    res = simulate(exp)
    assert res.summary["training.jobs.finished"] == 20
    assert res.summary["cluster.cards"] == 2048


def test_the_engine_never_imports_the_config():
    engine = REPO / "cluster_sim/engine"
    offenders = [str(p.relative_to(REPO)) for p in engine.rglob("*.py")
                 if "from ..config" in p.read_text() or "from ...config" in p.read_text()
                 or "cluster_sim.config" in p.read_text()]
    assert offenders == []
