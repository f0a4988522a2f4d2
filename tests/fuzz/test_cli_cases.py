"""The hand-minimised fuzz cases of the input-boundary issue, through the real CLI (in-process).

Each case was a traceback (exit 1), a hang, or silently accepted nonsense before the boundary
was hardened; each must now be exactly one ``error: ...`` line on stderr naming the file (and
line) or the field path, exit code 2, nothing on stdout and no run directory.
"""

from __future__ import annotations

import gzip
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from cluster_sim.cli import main

TINY = "{name: tiny, builder: fat_tree, system: hgx-h100, nodes: 4}"
BASE = f"""name: base
seed: 0
duration: 1h
cluster:
  topology: {TINY}
training:
  jobs:
    - {{name: ft, model: llama3-8b, cards: 8, card_type: h100-sxm, parallel: {{tp: 8}}, seq_len: 2048,
       global_batch: 64, tokens: 1B}}
  generator: {{kind: industry_mix, jobs_per_hour: 10}}
inference:
  services:
    - name: chat
      model: llama3-8b
      slo: {{ttft: 500ms, tpot: 50ms}}
      deployment: {{mode: colocated, replicas: 2, card_type: h100-sxm, tp: 1}}
      arrivals: {{kind: poisson, rate: 2, max_requests: 200}}
"""
MOON = '{"timestamp": 0, "input_length": 100, "output_length": 10, "hash_ids": [1]}\n'


def _bomb() -> str:
    text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for i in range(8):
        prev, cur = chr(97 + i), chr(98 + i)
        text += f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 10) + "]\n"
    return text + "cluster: {topology: x}\n"


def _topo(tmp: Path, name: str, text: str) -> str:
    """An experiment whose cluster.topology is the file ``name`` holding ``text``."""
    (tmp / name).write_text(text)
    return BASE.replace(TINY, str(tmp / name))


# id -> (experiment text or None for BASE, argv after the file, expected message regex)
Case = tuple[Callable[[Path], str] | None, list[str], str]
CASES: dict[str, Case] = {
    # --set values
    "set-yaml-syntax": (None, ["--set", "seed=[1"], r"^--set seed: invalid YAML: expected ',' or ']'"),
    "set-undefined-alias": (None, ["--set", "seed=*foo"], r"^--set seed: invalid YAML: found undefined alias 'foo'"),
    "set-python-tag": (None, ["--set", "seed=!!python/object/apply:os.system ['true']"],
                       r"^--set seed: invalid YAML: could not determine a constructor for the tag"),
    "set-scalar-as-mapping": (None, ["--set", "training.jobs.0.cards.x=5"],
                              r"^--set training.jobs.0.cards.x: training.jobs.0.cards is 8 \(int\), not a mapping"),
    "set-5000-digits": (None, ["--set", "seed=" + "9" * 5000], r"^--set seed: invalid YAML: integer with more than 30 digits"),
    "set-list-index": (None, ["--set", "training.jobs.7.cards=8"], r"^--set training.jobs.7.cards: no list item '7'"),
    "set-empty-part": (None, ["--set", "training..x=1"], r"^--set training..x: empty field name"),
    # files
    "file-latin1": (lambda t: BASE.replace("name: base", "name: caf\xe9"), [],
                    r"exp.yaml:1: not UTF-8 text: byte 0xe9"),
    "file-3000-deep": (lambda t: "cluster: " + "[" * 3000 + "]" * 3000 + "\n", [],
                       r"exp.yaml:1: invalid YAML: nested deeper than 64 levels"),
    "file-alias-bomb": (lambda t: _bomb(), [], r"exp.yaml:\d+: invalid YAML: expands to more than 200,000 values"),
    "file-recursive-alias": (lambda t: "cluster: &a {topology: *a}\n", [], r"exp.yaml:1: invalid YAML: recursive alias"),
    "file-10^400-int": (lambda t: BASE.replace("seed: 0", "seed: 1" + "0" * 400), [],
                        r"exp.yaml:2: invalid YAML: integer with more than 30 digits"),
    "file-duplicate-key": (lambda t: BASE + "seed: 3\n", [], r"exp.yaml:\d+: invalid YAML: duplicate key 'seed' \(first on line 2\)"),
    "file-nul-byte": (lambda t: "name: a\x00b\n", [], r"exp.yaml:1: invalid YAML: unacceptable character #x0000"),
    "topology-300-char-path": (lambda t: BASE.replace(TINY, "topologies/" + "a" * 300 + ".yaml"), [],
                               r"^cluster.topology: topologies/a+\.\.\.a+\.yaml: invalid path: a name is longer than 255"),
    "topology-dev-zero": (lambda t: BASE.replace(TINY, "/dev/zero"), [], r"^cluster.topology: /dev/zero: not a regular file"),
    "topology-fifo": (lambda t: (os.mkfifo(t / "fifo.yaml"), BASE.replace(TINY, str(t / "fifo.yaml")))[1], [],
                      r"^cluster.topology: .*fifo.yaml: not a regular file"),
    "topology-directory": (lambda t: BASE.replace(TINY, str(t)), [], r"^cluster.topology: .*: not a regular file"),
    # values the schema let through and the engine then raised on (or hung)
    "duration-0": (None, ["--set", "duration=0"], r"exp.yaml: duration: Input should be greater than 0"),
    "seed--1": (None, ["--set", "seed=-1"], r"exp.yaml: seed: Input should be greater than or equal to 0"),
    "card-mtbf-0": (None, ["--set", "failures.card_mtbf=0"], r"exp.yaml: failures.card_mtbf: Input should be greater than 0"),
    "card-mtbf-1ms": (None, ["--set", "failures.card_mtbf=1ms"],
                      r"exp.yaml: failures.card_mtbf: Input should be greater than or equal to 3600 \(got '1ms'\)"),
    "checkpoint-interval-0": (None, ["--set", "failures.checkpoint_interval=0"],
                              r"exp.yaml: failures.checkpoint_interval: Input should be greater than 0"),
    "generator-classes-empty": (None, ["--set", "training.generator.params.classes=[]"],
                                r"exp.yaml: training.generator: params.classes: expected a non-empty list"),
    "gamma-cv-1e-300": (None, ["--set", "inference.services.0.arrivals.kind=gamma",
                               "--set", "inference.services.0.arrivals.cv=1e-300"],
                        r"exp.yaml: inference.services\[0\].arrivals.cv: Input should be greater than or equal to 0.01"),
    "poisson-rate-1e300": (None, ["--set", "inference.services.0.arrivals.rate=1e300"],
                           r"exp.yaml: inference.services\[0\].arrivals.rate: Input should be less than or equal to 100000"),
    "rate-times-duration": (None, ["--set", "inference.services.0.arrivals.rate=5000",
                                   "--set", "inference.services.0.arrivals.max_requests=null", "--set", "duration=1d"],
                            r"exp.yaml: inference.services\[0\].arrivals.rate: 5000 requests/s for 86400 s is 4.32e\+08 "
                            r"requests; the limit is 10,000,000"),
    "nan-rate": (lambda t: BASE.replace("rate: 2,", "rate: .nan,"), [],
                 r"exp.yaml: inference.services\[0\].arrivals.rate: Input should be a finite number"),
    "slo-0": (None, ["--set", "inference.services.0.slo.ttft=0"],
              r"exp.yaml: inference.services\[0\].slo.ttft: Input should be greater than 0"),
    "routing-metric-bogus": (None, ["--set", "policy.serving.routing=least_loaded",
                                    "--set", "policy.serving.routing.params.metric=bogus"],
                             r"exp.yaml: policy.serving.routing.params.metric: unknown value 'bogus'; known: requests, tokens, kv"),
    "pool-bogus": (None, ["--set", "policy.pool=bogus"],
                   r"exp.yaml: policy.pool: unknown pool policy 'bogus'; known: peak_shaving, separate, shared_pool, static_partition"),
    "scheduler-bogus": (None, ["--set", "policy.training.scheduler=bogus"],
                        r"exp.yaml: policy.training.scheduler: unknown scheduler 'bogus'; known: easy, "),
    "autoscaler-interval-0": (None, ["--set", "policy.serving.autoscaling=queue_driven",
                                     "--set", "policy.serving.autoscaling.params.interval_s=0"],
                              r"exp.yaml: policy.serving.autoscaling.params.interval_s: must be >= 0.001, got 0"),
    "duplicate-service-names": (lambda t: BASE + "    - name: chat\n      model: llama3-8b\n      deployment: "
                                "{mode: colocated, replicas: 1, card_type: h100-sxm}\n      arrivals: {rate: 2}\n",
                                [], r"exp.yaml: inference.services\[1\].name: duplicate name 'chat' \(also inference.services\[0\]\)"),
    "duplicate-job-names": (lambda t: BASE.replace("  generator:", "    - {name: ft, model: llama3-8b, cards: 8}\n"
                                                   "  generator:"), [],
                            r"exp.yaml: training.jobs\[1\].name: duplicate name 'ft'"),
    "max-batch-seqs-huge": (None, ["--set", "policy.serving.batching.max_batch_seqs=1000000000000"],
                            r"exp.yaml: policy.serving.batching.max_batch_seqs: Input should be less than or equal to 65536"),
    "jobs-per-hour-1e9": (None, ["--set", "training.generator.jobs_per_hour=1e9"],
                          r"exp.yaml: training.generator.jobs_per_hour: Input should be less than or equal to 1000000"),
    "priority-int8": (None, ["--set", "training.jobs.0.priority=1000"],
                      r"exp.yaml: training.jobs\[0\].priority: Input should be less than or equal to 127"),
    # topologies
    "topology-list": (lambda t: _topo(t, "t.yaml", "- builder: fat_tree\n- nodes: 4\n"), [],
                      r"^cluster.topology: .*t.yaml: top level: expected a mapping, got list"),
    "topology-self-include": (lambda t: _topo(t, "t.yaml", f"builder: multi_dc\nsites: [{t / 't.yaml'}, {t / 't.yaml'}]\n"
                                                           "distance: 10 km\n"), [],
                              r"^cluster.topology: .*t.yaml: sites\[0\]: '.*t.yaml' is itself a multi_dc topology"),
    "topology-10M-nodes": (lambda t: BASE.replace("nodes: 4}", "nodes: 10000000}"), [],
                           r"^cluster.topology: <inline topology>: nodes: 10,000,000 is more than the limit of 1,000,000"),
    "topology-1.6M-cards": (lambda t: BASE.replace("nodes: 4}", "nodes: 200000}"), [],
                            r"^cluster.topology: <inline topology>: 1,600,000 cards is more than the limit of 1,000,000"),
    "topology-site-bad-yaml": (lambda t: _topo(t, "t.yaml", "builder: multi_dc\nsites: [s.yaml, s.yaml]\ndistance: 1 km\n")
                               if (t / "s.yaml").write_text("builder: [x\n") else "", [],
                               r"^cluster.topology: .*t.yaml: sites\[0\]: s.yaml: invalid YAML \(line 2\)"),
    # traces read by an experiment
    "trace-deep-json": (lambda t: (t / "deep.jsonl").write_text(MOON + '{"timestamp": 1, "hash_ids": ' + "[" * 100_000
                                                                + "]" * 100_000 + "}\n") and BASE.replace(
        "arrivals: {kind: poisson, rate: 2, max_requests: 200}", f"arrivals: {{kind: trace, format: mooncake, path: "
        f"{t / 'deep.jsonl'}}}"), [], r"deep.jsonl:2: not valid JSON \(nested deeper than 32 levels\)"),
    "trace-huge-int": (lambda t: (t / "big.jsonl").write_text(MOON + '{"timestamp": 1' + "0" * 400 + "}\n") and BASE.replace(
        "arrivals: {kind: poisson, rate: 2, max_requests: 200}", f"arrivals: {{kind: trace, format: mooncake, path: "
        f"{t / 'big.jsonl'}}}"), [], r"big.jsonl:2: not valid JSON \(integer with more than 30 digits\)"),
}


def _one_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    code = main(argv)
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2, (code, err[-500:])
    assert out == "" and len(lines) == 1 and lines[0].startswith("error: "), err[-2000:]
    return lines[0].removeprefix("error: ")


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("case", list(CASES))
def test_case_is_one_line_exit_2(case, command, tmp_path, capsys, repo, monkeypatch):
    monkeypatch.chdir(repo)
    make, extra, pattern = CASES[case]
    if command == "run" and case.startswith("topology-fifo"):
        pytest.skip("one FIFO case is enough")
    exp = tmp_path / "exp.yaml"
    text = BASE if make is None else make(tmp_path)
    exp.write_bytes(text.encode("latin-1" if case == "file-latin1" else "utf-8"))
    out = tmp_path / "out"
    argv = [command, str(exp), *extra] + (["--out", str(out)] if command == "run" else [])
    msg = _one_error(capsys, argv)
    assert re.search(pattern, msg), msg
    assert not out.exists(), "nothing may be written for a refused input"


def test_base_experiment_is_valid(tmp_path, capsys, repo, monkeypatch):
    """The cases above differ from a valid experiment only by what they break."""
    monkeypatch.chdir(repo)
    exp = tmp_path / "exp.yaml"
    exp.write_text(BASE)
    assert main(["validate", str(exp)]) == 0
    assert capsys.readouterr().out.strip().endswith("exp.yaml: valid")


def test_experiment_file_that_is_not_a_regular_file(tmp_path, capsys):
    os.mkfifo(tmp_path / "fifo.yaml")
    assert _one_error(capsys, ["validate", str(tmp_path / "fifo.yaml")]).endswith("fifo.yaml: not a regular file")
    assert _one_error(capsys, ["validate", "/dev/zero"]) == "/dev/zero: not a regular file"
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * (4 * 2**20) + "\n")
    assert _one_error(capsys, ["validate", str(big)]).startswith(f"{big}: file too large: ")


@pytest.mark.parametrize("name,text,expect", [
    ("trunc.jsonl.gz", None, "trunc.jsonl.gz: cannot read as text (Compressed file ended"),
    ("big.jsonl", MOON + '{"timestamp": 1' + "0" * 400 + ', "input_length": 1, "output_length": 1, "hash_ids": [1]}\n',
     "big.jsonl:2: not valid JSON (integer with more than 30 digits)"),
    ("hash.jsonl", MOON + '{"timestamp": 1, "input_length": 1, "output_length": 1, "hash_ids": [' + "9" * 20 + "]}\n",
     "hash.jsonl:2: hash_ids: a block hash does not fit 64 bits"),
    ("deep.jsonl", MOON + '{"timestamp": 1, "hash_ids": ' + "[" * 100_000 + "]" * 100_000 + "}\n",
     "deep.jsonl:2: not valid JSON (nested deeper than 32 levels)"),
    ("bom.jsonl", "\ufeff" + MOON.replace("\n", "\r\n") + "{oops\r\n", "bom.jsonl:2: not valid JSON ("),
])
def test_trace_stats_bad_lines(name, text, expect, tmp_path, capsys):
    p = tmp_path / name
    if text is None:
        raw = gzip.compress((MOON * 50).encode())
        p.write_bytes(raw[: len(raw) // 2])
    else:
        p.write_text(text, newline="")
    assert _one_error(capsys, ["trace", "stats", str(p), "--format", "mooncake"]).startswith(expect)


def test_boundary_errors_are_the_last_line_of_defence(capsys, monkeypatch):
    """An OSError/RecursionError/MemoryError no check caught is one line and exit 2; a bug is not."""
    import cluster_sim.cli.validate as validate_cmd

    for exc, line in [(PermissionError(13, "Permission denied", "/x/run"), "/x/run: Permission denied"),
                      (RecursionError("maximum recursion depth exceeded"), "input nested too deeply"),
                      (MemoryError(), "out of memory")]:
        def boom(args, _exc=exc):
            raise _exc
        monkeypatch.setattr(validate_cmd, "load_experiment", boom)
        assert _one_error(capsys, ["validate", "x.yaml"]).startswith(line)
    monkeypatch.setattr(validate_cmd, "load_experiment", lambda args: 1 / 0)
    with pytest.raises(ZeroDivisionError):  # a programming error keeps its traceback
        main(["validate", "x.yaml"])
