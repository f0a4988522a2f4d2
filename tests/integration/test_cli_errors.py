"""Bad input: every user mistake exits 2 with exactly one line on stderr and no traceback."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from cluster_sim.cli import main
from cluster_sim.errors import TopologyError
from cluster_sim.topology import EdgeTable, Topology, fat_tree

JOB = ("    - {name: pretrain, model: MODEL, cards: CARDS, card_type: CARD, parallel: PAR,\n"
       "       seq_len: 8192, global_batch: 512}\n")


def experiment(tmp_path: Path, *, model="llama3-70b", cards=512, card="h100-sxm", par="{tp: 8, pp: 4}",
               extra="", topology="topologies/h100-rail-1024.yaml") -> str:
    job = (JOB.replace("MODEL", model).replace("CARDS", str(cards)).replace("CARD", card)
           .replace("PAR", par))
    p = tmp_path / "exp.yaml"
    p.write_text(f"name: bad\ncluster:\n  topology: {topology}\ntraining:\n  jobs:\n{job}{extra}")
    return str(p)


def one_error_line(capsys, argv: list[str]) -> str:
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and out == ""
    assert lines[0].startswith("error: ")
    return lines[0].removeprefix("error: ")


@pytest.fixture()
def repo_cwd(repo, monkeypatch):
    monkeypatch.chdir(repo)  # experiment files name topologies/... relative to the repo


def test_unknown_accelerator_lists_valid_names(tmp_path, capsys, repo_cwd):
    msg = one_error_line(capsys, ["train", experiment(tmp_path, card="h300")])
    assert msg.startswith("training.jobs[0].card_type: unknown accelerator 'h300'; known: ")
    assert "a100-80gb" in msg and "h100-sxm" in msg and "ascend-910b" in msg


def test_unknown_model_lists_valid_names(tmp_path, capsys, repo_cwd):
    msg = one_error_line(capsys, ["train", experiment(tmp_path, model="gpt5")])
    assert msg.startswith("training.jobs[0].model: unknown model 'gpt5'; known: ") and "llama3-70b" in msg


def test_misspelt_field_is_path_qualified(tmp_path, capsys, repo_cwd):
    msg = one_error_line(capsys, ["train", experiment(tmp_path, par="{tp: 8, ppp: 4}")])
    assert msg.endswith("exp.yaml: training.jobs[0].parallel.ppp: unknown field; known: attention_kernel, "
                        "cp, dp, dp_overlap, ep, ep_overlap, microbatch_overhead, microbatch_size, "
                        "microbatches, pp, pp_overlap, recompute, sequence_parallel, tp, tp_overlap, "
                        "virtual_stages, zero")


@pytest.mark.parametrize(("knob", "value", "why"), [("tp_overlap", "1.5", "less than or equal to 1"),
                                                   ("pp_overlap", "-0.1", "greater than or equal to 0"),
                                                   ("ep_overlap", "2", "less than or equal to 1")])
def test_overlap_outside_unit_interval_is_one_path_qualified_line(tmp_path, capsys, repo_cwd, knob,
                                                                  value, why):
    msg = one_error_line(capsys, ["train", experiment(tmp_path, par=f"{{tp: 8, pp: 4, {knob}: {value}}}")])
    assert f"exp.yaml: training.jobs[0].parallel.{knob}: " in msg, msg
    assert why in msg, msg


def test_mistyped_field_is_path_qualified(tmp_path, capsys, repo_cwd):
    msg = one_error_line(capsys, ["validate", experiment(tmp_path, cards="lots")])
    assert "exp.yaml: training.jobs[0].cards: " in msg and "'lots'" in msg


def test_plan_that_does_not_divide_the_cards(tmp_path, capsys, repo_cwd):
    msg = one_error_line(capsys, ["train", experiment(tmp_path, par="{tp: 8, pp: 3}")])
    assert msg == "training.jobs[0].parallel: tp*pp*cp = 24 does not divide the job's 512 cards"


def test_plan_that_does_not_fit_says_by_how_much(tmp_path, capsys, repo_cwd):
    msg = one_error_line(capsys, ["validate", experiment(tmp_path, cards=8, par="{tp: 8}")])
    assert msg.startswith("training.jobs[0]: plan tp=8 pp=1 dp=1 ep=1 does not fit llama3-70b in memory: ")
    short = float(msg.split("(")[1].split(" GiB short")[0])
    needs = float(msg.split("needs ")[1].split(" GiB")[0])
    usable = float(msg.split("per card, ")[1].split(" GiB usable")[0])
    assert short == pytest.approx(needs - usable, abs=0.11) and short > 0


def _disconnected(name: str) -> Topology:
    """Two HGX nodes with every link of card 0 cut (not expressible in YAML: builders always connect)."""
    t = fat_tree("hgx-h100", 2, name=name)
    e = t.edges
    keep = [i for i, (u, v) in enumerate(zip(e.u, e.v, strict=True)) if u != 0 and v != 0]
    edges = EdgeTable(u=tuple(e.u[i] for i in keep), v=tuple(e.v[i] for i in keep),
                      bandwidth_Bps=e.bandwidth_Bps[keep], latency_s=e.latency_s[keep],
                      efficiency=e.efficiency[keep], tier=tuple(e.tier[i] for i in keep),
                      level=tuple(e.level[i] for i in keep))
    return Topology(name=name, cards=t.cards, edges=edges, switches=t.switches, sites=t.sites, dci=t.dci,
                    bisection_Bps=t.bisection_Bps, builder="custom")


def test_disconnected_accelerator(tmp_path, capsys, repo_cwd, monkeypatch):
    cut = _disconnected("x")
    assert 0 not in cut.edges.u and 0 not in cut.edges.v

    def load(src, base_dir=None):  # what topology.load_topology does after building: validate()
        topo = _disconnected("cut")
        topo.validate()
        return topo

    monkeypatch.setattr(importlib.import_module("cluster_sim.experiment.cluster"), "load_topology", load)
    with pytest.raises(TopologyError):
        load("x")
    msg = one_error_line(capsys, ["validate", experiment(tmp_path, cards=8, model="llama3-8b", par="{tp: 8}")])
    assert msg.startswith("cluster.topology: topology 'cut': card 0 (node 0, domain 0)") and "is not connected to card 1" in msg


def test_missing_experiment_file(tmp_path, capsys):
    msg = one_error_line(capsys, ["train", str(tmp_path / "nope.yaml")])
    assert msg == f"{tmp_path / 'nope.yaml'}: no such file"


def test_missing_topology_file(tmp_path, capsys, repo_cwd):
    msg = one_error_line(capsys, ["run", experiment(tmp_path, topology="topologies/nope.yaml")])
    assert msg.startswith("cluster.topology: topologies/nope.yaml: file not found")


def test_bad_set_and_cards_syntax(tmp_path, capsys, repo_cwd):
    exp = experiment(tmp_path, model="llama3-8b", cards=8, par="{tp: 8}")
    assert one_error_line(capsys, ["train", exp, "--set", "seed"]).startswith("--set 'seed': expected KEY=VALUE")
    assert one_error_line(capsys, ["scaling", exp, "--cards", "8,x"]).startswith("--cards '8,x': expected")
    assert "not multiples of tp*pp*cp = 8" in one_error_line(capsys, ["scaling", exp, "--cards", "4,8"])
    assert one_error_line(capsys, ["compare", exp, "--factor", "seed"]).startswith("--factor 'seed': expected")


def test_real_process_exit_code_and_stderr(tmp_path, repo):
    exp = experiment(tmp_path, model="gpt5", topology=str(repo / "topologies" / "h100-rail-1024.yaml"))
    exe = Path(sys.executable).with_name("cluster-sim")
    res = subprocess.run([str(exe), "train", exp], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    assert "training.jobs[0].model: unknown model 'gpt5'" in res.stderr


@pytest.mark.parametrize(("par", "field"), [
    ("{tp: 8, pp: 4, attention_kernel: sdpa}", "attention_kernel"),
    ("{tp: 8, pp: 4, microbatch_overhead: -1ms}", "microbatch_overhead"),
    ("{tp: 8, pp: 4, microbatch_overhead: soon}", "microbatch_overhead"),
])
def test_bad_step_knob_is_one_path_qualified_line(tmp_path, capsys, repo_cwd, par, field):
    msg = one_error_line(capsys, ["train", experiment(tmp_path, par=par)])
    assert f"exp.yaml: training.jobs[0].parallel.{field}: " in msg, msg
