"""Failure classes from the experiment file (docs/faults.md): bad input exits 2 with the field
path and writes nothing; a class never shifts another random stream; the summary keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster_sim.cli import main
from cluster_sim.config import load_config
from cluster_sim.experiment.build import build_simulation
from cluster_sim.rng import Streams

BASE = """name: faults
seed: 4
duration: 3d
cluster:
  topology: {builder: node_groups, nodes_per_leaf: NPL, groups: [[h100-sxm, 8, 8]]}
training:
  generator: {kind: industry_mix, jobs_per_hour: 2}
"""
CLASSES = """failures:
  classes:
    - {name: host, unit: node, rate_per_1000_node_days: 50, repair: 12h}
    - {name: gpu, unit: card, mtbf: 2000h, distribution: weibull, shape: 0.8, repair: 6h}
    - {name: cable, unit: link, mtbf: 500h, repair: 2h}
  technicians: 1
  spare_nodes: 1
"""


def experiment(tmp_path: Path, failures: str = CLASSES, npl: int = 2) -> str:
    p = tmp_path / "exp.yaml"
    p.write_text(BASE.replace("NPL", str(npl)) + failures)
    return str(p)


@pytest.mark.parametrize("sets, where", [
    (["failures.classes.0.rate_per_1000_node_days=0"], "failures.classes[0].rate_per_1000_node_days"),
    (["failures.classes.1.mtbf=0"], "failures.classes[1].mtbf"),
    (["failures.classes.1.mtbf=-3h"], "failures.classes[1].mtbf"),
    (["failures.classes.1.shape=0"], "failures.classes[1].shape"),
    (["failures.classes.1.shape=-1"], "failures.classes[1].shape"),
    (["failures.spare_nodes=9"], "failures.spare_nodes"),
    (["failures.technicians=0"], "failures.technicians"),
    (["failures.classes.0.unit=rack"], "failures.classes[0].unit"),
    (["failures.classes.0.mtbf=100h"], "failures.classes[0]: mtbf, rate_per_1000_node_days"),
    (["failures.card_mtbf=1000h"], "failures: classes"),
    (["failures.classes.1.name=host"], "failures: classes[1].name: duplicate"),
])
def test_bad_failure_input_exits_2_with_the_field(tmp_path, capsys, sets, where):
    out = tmp_path / "run"
    argv = ["run", experiment(tmp_path), *[x for kv in sets for x in ("--set", kv)], "--out", str(out)]
    code = main(argv)
    _, err = capsys.readouterr()
    assert code == 2 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and where in err, err
    assert not out.exists()


def test_link_and_switch_classes_need_leaves(tmp_path, capsys):
    for unit in ("link", "switch"):
        f = experiment(tmp_path, f"failures:\n  classes: [{{name: x, unit: {unit}, mtbf: 1000h, repair: 1h}}]\n",
                       npl=32)
        code = main(["run", f, "--out", str(tmp_path / unit)])
        err = capsys.readouterr().err
        assert code == 2 and "failures.classes[0].unit" in err and "leaf" in err, err


def test_classes_never_shift_other_streams(tmp_path):
    """The same jobs arrive, and after the run every non-failure stream draws the same next
    numbers, with and without the classes; each class drew from its own stream."""
    runs = {}
    for name, failures in (("none", ""), ("classes", CLASSES)):
        sim = build_simulation(load_config(experiment(tmp_path, failures)))
        sim.run()
        rec = sim.collect()
        runs[name] = (sim, rec)
    (a, ra), (b, rb) = runs["none"], runs["classes"]
    assert (ra.jobs["submit_s"] == rb.jobs["submit_s"]).all()
    assert (ra.jobs["duration_s"] == rb.jobs["duration_s"]).all()
    others = [s for s in b.streams if not s.startswith("failures")]
    assert others == list(a.streams) and "workload" in others
    for s in others:
        assert a.streams[s].random(4).tolist() == b.streams[s].random(4).tolist()
    assert {"failures.host", "failures.gpu", "failures.cable"} <= set(b.streams)
    assert not any(s.startswith("failures") for s in list(a.streams))
    # the serving streams (their own Streams of the seed) draw the same after the classes drew
    fresh = Streams(4)
    for name in ("failures.host", "failures.gpu", "failures.cable"):
        b.streams[name].random(1000)
    for name in ("arrivals", "lengths"):
        assert b.streams[name].random(4).tolist() == fresh[name].random(4).tolist()


def test_summary_keys_from_the_cli(tmp_path, capsys):
    import json
    out = tmp_path / "run"
    assert main(["run", experiment(tmp_path), "--out", str(out), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    for c in ("host", "gpu", "cable"):
        for k in ("failures", "interruptions", "job_interruptions", "interruptions_per_day", "mttr_h"):
            assert f"failures.{c}.{k}" in s
    parts = sum(s[f"failures.card_hours.{k}"] for k in ("up", "waiting", "repairing", "swapping"))
    assert parts == pytest.approx(64 * 3 * 24)
    assert s["failures.host.failures"] > 0 and s["failures.job_interruptions"] == s["training.restarts"]
