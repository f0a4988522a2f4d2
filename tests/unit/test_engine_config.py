"""Building runs from experiment configs: clusters (topologies, node inventories, openb nodes),
workloads (explicit model jobs, generators, traces), bad input."""

from __future__ import annotations

import pytest

from cluster_sim.errors import ConfigError, TraceError
from cluster_sim.experiment.build import build_layout
from cluster_sim.experiment.drivers import compare, run_training

GROUPS = {"builder": "node_groups", "groups": [["h100-sxm", 8, 4]], "nodes_per_leaf": 2}


def test_node_groups_cluster_and_bad_fields():
    lo = build_layout(GROUPS)
    assert lo.n_cards == 32 and lo.card_leaf.max() == 1
    with pytest.raises(ConfigError, match="cluster.topology.nodes: unknown field"):
        build_layout({**GROUPS, "nodes": 3})
    with pytest.raises(ConfigError, match="cluster.topology.path: required"):
        build_layout({"builder": "openb_nodes"})


def test_uniform_generator_and_errors():
    cfg = {"cluster": {"topology": GROUPS}, "seed": 3,
           "training": {"generator": {"kind": "uniform", "n_jobs": 50, "jobs_per_hour": 360,
                                      "params": {"mean_duration_s": 20.0}}}}
    res = run_training(cfg)
    assert res.summary["training.jobs.finished"] == 50
    bad = {**cfg, "training": {"generator": {"kind": "uniform", "n_jobs": 5, "jobs_per_hour": 1,
                                              "params": {"mean_duration_s": 1.0, "bogus": 1}}}}
    with pytest.raises(ConfigError, match="training.generator.params"):
        run_training(bad)
    with pytest.raises(ConfigError, match="give n_jobs, or set the experiment duration"):
        run_training({**cfg, "training": {"generator": {"kind": "industry_mix"}}})
    with pytest.raises(ConfigError, match="unknown trace kind"):
        run_training({**cfg, "training": {"trace": {"kind": "philly", "path": "x.csv"}}})


def test_trace_with_missing_columns_raises_trace_error(tmp_path):
    bad = tmp_path / "pods.csv"
    bad.write_text("name,cpu_milli,num_gpu\np1,100,1\n")
    cfg = {"cluster": {"topology": GROUPS}, "training": {"trace": {"kind": "alibaba_openb", "path": str(bad)}}}
    with pytest.raises(TraceError, match="pods.csv.*missing column"):
        run_training(cfg)


def test_explicit_model_jobs_slow_down_across_an_oversubscribed_spine():
    topo = {"builder": "fat_tree", "system": "hgx-h100", "nodes": 24, "oversubscription": 4,
            "leaf_radix": 64, "tiers": 2, "fabric": "ib_ndr"}
    jobs = [{"name": f"j{k}", "model": "llama3-8b", "cards": 48, "card_type": "h100-sxm",
             "parallel": {"tp": 8}, "seq_len": 4096, "global_batch_tokens": "192K", "tokens": "2B"}
            for k in range(4)]
    cfg = {"seed": 1, "cluster": {"topology": topo}, "training": {"jobs": jobs}}
    good = run_training(cfg, overrides={"policy.training.placement": "topology_aware"})
    bad = run_training(cfg, overrides={"policy.training.placement": "spread"})
    gj, bj = good.jobs, bad.jobs
    assert (gj.n_leaves == 1).all() and (bj.n_leaves >= 2).all()
    assert (gj.status == "finished").all() and (bj.status == "finished").all()
    # the perf model's step time at the reference placement gives duration_s; MFU from the estimate
    assert gj.jct_s.max() == pytest.approx(gj.duration_s.max(), rel=0.05)
    assert 0.2 < good.summary["training.jobs.mfu"] < 0.8
    assert bad.summary["training.jobs.mfu"] < 0.85 * good.summary["training.jobs.mfu"]
    assert bad.summary["training.jct_s.mean"] > 1.1 * good.summary["training.jct_s.mean"]


def test_compare_runs_one_row_per_value():
    cfg = {"cluster": {"topology": GROUPS}, "seed": 2,
           "training": {"generator": {"kind": "uniform", "n_jobs": 40, "jobs_per_hour": 3600,
                                      "params": {"mean_duration_s": 5.0, "num_cards": 4}}}}
    df = compare(cfg, "policy.training.placement", ["packed", "spread"])
    assert df["policy.training.placement"].tolist() == ["packed", "spread"]
    assert (df["training.jobs.finished"] == 40).all()


def test_openb_cluster_and_trace(traces):
    base = traces / "alibaba_gpu_v2023"
    cfg = {"seed": 0, "cluster": {"topology": {"builder": "openb_nodes",
                                               "path": str(base / "openb_node_list_gpu_node.csv")}},
           "training": {"trace": {"kind": "alibaba_openb", "path": str(base / "openb_pod_list_gpuspec33.csv"),
                                  "max_jobs": 600, "time_scale": 0.001}},
           "duration": "3d", "policy": {"training": {"placement": "fragmentation_aware", "backfill": True}}}
    res = run_training(cfg)
    rec = res.record
    assert rec.meta["n_cards"] == 6212 and set(rec.meta["assumed_card_types"]) == {"G2", "G3"}
    j = res.jobs
    assert len(j) == 600 and (j.status != "pending").all()
    shared = j[j.card_milli < 1000]
    assert len(shared) > 100 and (shared.status != "rejected").all()
    # pods pinned to a type ran only on that type
    from cluster_sim.workload.traces.alibaba import read_openb_pods

    table = read_openb_pods(base / "openb_pod_list_gpuspec33.csv")
    allowed = {int(table.job_id[r]): table.allowed_types(r) for r in range(600)}
    started = j[j.card_type != ""]
    pinned = [(jid, ct) for jid, ct in zip(started.job_id, started.card_type, strict=True) if allowed[jid]]
    assert len(pinned) > 50 and all(ct in allowed[jid] for jid, ct in pinned)
    assert res.summary["utilization.allocated"] > 0


@pytest.mark.parametrize("name", ["placement_oversubscribed", "heterogeneity"])
def test_cluster_experiment_files_run(repo, name):
    res = run_training(repo / "workloads" / f"{name}.yaml", overrides={"duration": "1d"})
    s = res.summary
    assert s["training.jobs.finished"] > 50 and 0 < s["utilization.allocated"] < 1
    assert s["training.jobs.mfu"] is not None and 0 < s["training.jobs.mfu"] < 1


def test_fragmentation_experiment_file_runs(repo, traces):
    res = run_training(repo / "workloads" / "fragmentation_openb.yaml",
                       overrides={"training.trace.max_jobs": 1500})
    assert res.record.meta["n_cards"] == 4662  # the openb GPU nodes scaled to 75%
    assert res.summary["training.jobs.submitted"] == 1500
    assert res.timeline["submitted_cards"].iloc[-1] > 0


def test_pai_cluster_with_philly_finetune_durations(traces):
    cfg = {"seed": 4, "duration": "2d",
           "cluster": {"topology": {"builder": "pai_machines",
                                    "path": str(traces / "alibaba_pai_v2020" / "pai_machine_spec.csv")}},
           "training": {"generator": {"kind": "industry_mix", "n_jobs": 300, "jobs_per_hour": 20,
                                      "params": {"philly_durations": True, "classes": ["finetune"]}}}}
    res = run_training(cfg)
    assert res.record.meta["n_cards"] == 6742
    j = res.jobs
    assert (j.kind == "finetune").all() and (j.num_cards <= 8).all()
    assert res.summary["training.jobs.finished"] > 200
    with pytest.raises(ConfigError, match="unknown class 'huge'"):
        run_training(cfg, overrides={"training.generator.params.classes": ["huge"]})
