"""Options of every command (``--version``, ``-v/-q``, ``--traces``), shipped names, ``init``."""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

import pytest

import cluster_sim as cs
from cluster_sim import shipped
from cluster_sim.cli import build_parser, main
from cluster_sim.cli._common import show_progress
from cluster_sim.cli.init import INIT_TOPOLOGIES, INIT_WORKLOADS
from cluster_sim.errors import ConfigError
from cluster_sim.experiment.cluster import Cluster

TINY = """name: tiny
seed: 0
duration: 1h
cluster:
  topology: {name: t, builder: fat_tree, system: hgx-h100, nodes: 2}
training:
  generator: {kind: uniform, n_jobs: 4, jobs_per_hour: 10, params: {mean_duration_s: 600.0, num_cards: 4}}
"""

TRACED = """name: traced
duration: 10s
cluster:
  topology: {name: t, builder: fat_tree, system: hgx-h100, nodes: 1}
inference:
  services:
    - name: chat
      model: llama3-8b
      deployment: {replicas: 1, card_type: h100-sxm}
      arrivals: {kind: trace, format: azure_llm, path: ../shared/traces/azure_llm_2023/tiny.csv}
"""


@pytest.fixture()
def empty_cwd(tmp_path, monkeypatch):
    """An empty working directory, far from the repository's workloads/ and topologies/."""
    work = tmp_path / "empty"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out == f"cluster-sim {cs.__version__}\n"


@pytest.mark.parametrize("argv,verbosity,quiet", [
    (["run", "x.yaml"], 0, False), (["-v", "run", "x.yaml"], 1, False), (["run", "x.yaml", "-vv"], 2, False),
    (["-q", "run", "x.yaml"], 0, True), (["topology", "show", "x", "--quiet"], 0, True),
    (["train", "x.yaml", "--verbose", "-v"], 1, False),   # train's own --verbose (more JSON) stays its own
])
def test_global_options_before_or_after_the_command(argv, verbosity, quiet):
    args = build_parser().parse_args(argv)
    assert (args.verbosity, args.quiet) == (verbosity, quiet)
    assert show_progress(args) is (not quiet)
    assert show_progress(build_parser().parse_args([*argv, "--json"])) is False


def test_v_logs_info_vv_debug_default_nothing(tmp_path, capsys):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY)
    logger = logging.getLogger("cluster_sim")
    handlers, level = list(logger.handlers), logger.level
    assert main(["run", str(cfg), "--out", str(tmp_path / "a"), "--json"]) == 0
    assert "INFO" not in capsys.readouterr().err
    assert main(["-v", "run", str(cfg), "--out", str(tmp_path / "b"), "--json"]) == 0
    err = capsys.readouterr().err
    assert "INFO cluster_sim.experiment.run: phase 2 of 2 done" in err and "DEBUG" not in err
    assert f"INFO cluster_sim.config.load: {cfg}: experiment 'tiny', seed 0, 0 override(s)" in err
    assert main(["-vv", "validate", "train_llama3_70b"]) == 0
    err = capsys.readouterr().err
    assert re.search(r"DEBUG cluster_sim.config.load: train_llama3_70b: the shipped workload \S+train_llama3_70b"
                     r"\.yaml", err), err
    assert (list(logger.handlers), logger.level) == (handlers, level)   # undone when main returns


def test_v_and_q_together_is_one_error(capsys):
    assert main(["-v", "-q", "validate", "demo"]) == 2
    assert capsys.readouterr().err.strip() == "error: -v and -q: give one of them, not both"


def test_missing_trace_names_the_env_var_and_the_flag(tmp_path, capsys, monkeypatch):
    cfg = tmp_path / "traced.yaml"
    cfg.write_text(TRACED)
    traces = tmp_path / "traces"
    traces.mkdir()
    monkeypatch.setenv("CLUSTER_SIM_TRACES", str(tmp_path / "elsewhere"))
    assert main(["validate", str(cfg), "--traces", str(traces)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert "$CLUSTER_SIM_TRACES" in err and "--traces DIR" in err and str(traces) in err
    # with the trace in the --traces folder it is found; the variable is restored afterwards
    (traces / "azure_llm_2023").mkdir()
    (traces / "azure_llm_2023" / "tiny.csv").write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,374,44\n"
        "2023-11-16 18:15:50.9951690,396,109\n")
    assert main(["run", str(cfg), "--traces", str(traces), "--out", str(tmp_path / "run"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["inference.requests"] == 2
    assert os.environ["CLUSTER_SIM_TRACES"] == str(tmp_path / "elsewhere")


def test_traces_must_be_a_directory(tmp_path, capsys):
    assert main(["--traces", str(tmp_path / "nope"), "validate", "demo"]) == 2
    assert "--traces " in capsys.readouterr().err


def test_shipped_names_resolve_from_an_empty_directory(empty_cwd, capsys):
    assert main(["topology", "show", "h100-rail-1024", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_cards"] == 1024
    cfg = cs.load_config("demo")
    assert cfg.name == "demo" and Path(cfg.base_dir) == shipped.shipped_dir("workloads").resolve()
    assert cs.load_config("workloads/train_llama3_70b.yaml").name == cs.load_config("train_llama3_70b").name
    # the topology paths inside a shipped workload resolve to the shipped topologies
    assert Cluster.load(cfg).name == "h100-rail-1024"


def test_unknown_names_list_the_shipped_ones(empty_cwd, capsys):
    assert main(["topology", "show", "h100-rail-9999"]) == 2
    err = capsys.readouterr().err
    assert "h100-rail-9999: no such file, and not a shipped topology (shipped: " in err and "two-dc-300km" in err
    with pytest.raises(ConfigError, match=r"^demo2: no such file, and not a shipped workload \(shipped: .*demo"):
        cs.load_config("demo2")
    with pytest.raises(ConfigError, match=r"^demo2.yaml: no such file$"):   # a file name stays a file name
        cs.load_config("demo2.yaml")


def test_a_local_file_wins_over_a_shipped_name(empty_cwd):
    (empty_cwd / "demo").write_text(TINY)
    assert cs.load_config("demo").name == "tiny"


def test_init_writes_a_self_contained_example_set(tmp_path, capsys):
    target = tmp_path / "mine"
    assert main(["init", str(target)]) == 0
    assert f"wrote {len(INIT_WORKLOADS) + len(INIT_TOPOLOGIES) + 1} files to {target}/" in capsys.readouterr().out
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()) == sorted(
        ["README.md", *(f"workloads/{n}.yaml" for n in INIT_WORKLOADS),
         *(f"topologies/{n}.yaml" for n in INIT_TOPOLOGIES)])
    for n in INIT_WORKLOADS:   # every topology a copied workload names is copied too
        text = (target / "workloads" / f"{n}.yaml").read_text()
        assert text == shipped.require(n, "workloads", "workload").read_text()
        for ref in re.findall(r"topologies/[\w.-]+\.yaml", text):
            assert (target / ref).is_file(), ref
    # the copies are the ones used: an edited topology changes the run
    topo = target / "topologies" / "h100-rail-1024.yaml"
    topo.write_text(topo.read_text().replace("name: h100-rail-1024", "name: my-rail"))
    assert Cluster.load(cs.load_config(target / "workloads" / "demo.yaml")).name == "my-rail"


def test_init_refuses_a_non_empty_directory_or_a_file(tmp_path, capsys):
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("x")
    assert main(["init", str(full)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert [p.name for p in full.iterdir()] == ["keep.txt"]
    (tmp_path / "f").write_text("x")
    assert main(["init", str(tmp_path / "f")]) == 2
    assert "not a directory" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f", "full"]   # no temporary folder left
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["init", str(empty), "--json"]) == 0   # an empty folder is fine
    assert "README.md" in json.loads(capsys.readouterr().out)["files"]
