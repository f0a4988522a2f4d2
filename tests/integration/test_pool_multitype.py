"""One model on three vendors' cards under one router (workloads/pool_multi_vendor_router.yaml,
issue #13 item 2) under the pool policies: bad replica groups are one line and exit code 2;
every replica sits on its own type's cards (static silos per type, slots claimed by the broker);
min_replicas counts the service's replicas over all groups; the per-type keys add up."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cluster_sim import load_config, simulate
from cluster_sim.cli import main
from cluster_sim.experiment.build import inference_demand
from cluster_sim.experiment.cluster import Cluster

REPO = Path(__file__).resolve().parents[2]
ROUTER = str(REPO / "workloads" / "pool_multi_vendor_router.yaml")
TYPES = ("h100-sxm", "kunlun-p800", "ascend-910b")   # the groups, in order
G = "inference.services.0.deployment.groups"


@pytest.mark.parametrize("sets, message", [
    ([f"{G}.1.card_type=h100-xx"],
     "error: inference.services[0].deployment.groups[1].card_type: unknown accelerator 'h100-xx'"),
    ([f"{G}.0.tp=3"],
     "error: inference.services[0].deployment.groups[0].tp: 3 does not divide the 64 attention heads"),
    ([f"{G}=[]"], "inference.services[0].deployment: groups: must not be empty"),
    (["inference.services.0.deployment.replicas=2"],
     "inference.services[0].deployment: groups: give either groups or replicas and card_type, not both"),
    ([f"{G}.2.tp=1"], "error: inference.services[0].deployment.groups[2]: llama3-70b on 1 x ascend-910b"),
    (["policy.pool=peak_shaving", "policy.pool.params.min_replicas=13"],
     "error: policy.pool.params.min_replicas: 13 replicas must always serve, but "
     "inference.services[0].deployment has only 12"),
])
@pytest.mark.parametrize("command", ["validate", "run"])
def test_bad_groups_are_one_line_exit_2(command, sets, message, capsys, tmp_path):
    args = [command, ROUTER, "--set", "duration=10min", *[x for kv in sets for x in ("--set", kv)]]
    if command == "run":
        args += ["--out", str(tmp_path / "out")]
    code = main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "out").exists()


def test_inference_demand_counts_each_group_on_its_type():
    cfg = load_config(ROUTER)
    w = "inference.services[0].deployment.groups"
    assert inference_demand(cfg) == {t: [(f"{w}[{j}]", 16)] for j, t in enumerate(TYPES)}


@pytest.mark.parametrize("pool", ["static_partition", "peak_shaving"])
def test_each_replica_on_its_own_types_cards_and_per_type_keys_add_up(pool):
    sets = {"duration": "1h", "policy.pool": pool}
    if pool == "peak_shaving":
        sets["policy.pool.params.min_replicas"] = 2
    res = simulate(load_config(ROUTER, overrides=sets))
    s = res.summary
    layout = Cluster.load(load_config(ROUTER)).layout
    reps = res.tables["replicas"]
    assert reps.groupby("card_type").size().to_dict() == dict.fromkeys(TYPES, 4)
    for _, r in reps.iterrows():
        ids = np.array([int(c) for c in r["card_ids"].split(",")])
        assert {layout.card_types[t] for t in layout.card_type[ids]} == {r["card_type"]}
    assert len(set(",".join(reps["card_ids"]).split(","))) == 48   # no card in two slots
    for k in ("finished", "tokens_per_s"):
        assert sum(s[f"inference.chat.by_type.{t}.{k}"] for t in TYPES) == pytest.approx(s[f"inference.chat.{k}"])
    routed = s["inference.chat.requests"] - s["inference.chat.rejected"]   # a rejected one meets no replica
    assert sum(s[f"inference.chat.by_type.{t}.requests"] for t in TYPES) == routed
    # the trough hour needs few replicas: the first group (H100) serves nearly everything
    assert s["inference.chat.by_type.h100-sxm.finished"] > 0.9 * s["inference.chat.finished"]
    if pool == "peak_shaving":
        # min_replicas 2 over the service's one router: two H100 replicas always on, the rest lent
        alloc = reps.set_index("replica")["allocated_s"]
        assert (alloc.iloc[:2] == 3600.0).all()
        assert s["pool.lends"] > 0


def test_run_json_has_per_type_keys(capsys):
    assert main(["run", ROUTER, "--set", "duration=20min", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert {f"inference.chat.by_type.{t}.cards" for t in TYPES} <= set(s)
    assert [s[f"inference.chat.by_type.{t}.cards"] for t in TYPES] == [16.0, 16.0, 16.0]
