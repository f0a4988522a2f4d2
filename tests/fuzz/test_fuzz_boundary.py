"""A fuzzed input boundary: generated experiment mappings and files, ``--set`` overrides,
topology specs and files, and trace files, each mutated from a valid base with wrong types,
missing and unknown fields, zero, negative, NaN, inf and huge values, deep nesting, alias bombs,
``!!python`` tags, BOMs, CRLF, truncation and binary junk.

The oracle is the boundary contract: every input either loads (and validates) or raises one
:class:`~cluster_sim.errors.ClusterSimError` whose message is a single non-empty line starting
with a location (``file:line:``, ``--set key:`` or a field path); through the CLI, exit code 2,
exactly one ``error:`` line and nothing on stdout. Any other exception fails the test.

Each test runs twice: a quick variant in the default suite (``FAST`` examples) and a
``slow`` one under ``--runslow`` (``SLOW`` examples); ``test_zz_cases_tried`` checks the
count of cases actually tried. Both budgets can be overridden with the environment variables
``CLUSTER_SIM_FUZZ_FAST`` / ``CLUSTER_SIM_FUZZ_SLOW``. Hypothesis runs derandomized without
an example database, so every run tries the same cases.
"""

from __future__ import annotations

import copy
import gzip
import json
import math
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cluster_sim.cli import main
from cluster_sim.config import load_config
from cluster_sim.errors import ClusterSimError
from cluster_sim.experiment import check
from cluster_sim.topology import load_topology
from cluster_sim.topology.safe_load import parse_yaml
from cluster_sim.workload.traces import trace_stats

REPO = Path(__file__).resolve().parents[2]
FAST = int(os.environ.get("CLUSTER_SIM_FUZZ_FAST", "80"))
SLOW = int(os.environ.get("CLUSTER_SIM_FUZZ_SLOW", "2100"))
TESTS = ("mappings", "overrides", "files", "topologies", "traces")
TALLY: Counter[str] = Counter()
OUTCOMES: Counter[str] = Counter()  # "accepted" / "refused", for the summary line
BUDGET: Counter[str] = Counter()

BASE_TEXT = """name: base
seed: 0
duration: 1h
cluster:
  topology: {name: tiny, builder: fat_tree, system: hgx-h100, nodes: 4}
training:
  jobs:
    - {name: ft, model: llama3-8b, cards: 8, card_type: h100-sxm, parallel: {tp: 8}, seq_len: 2048,
       global_batch: 64, tokens: 1B}
  generator: {kind: industry_mix, jobs_per_hour: 10}
inference:
  services:
    - name: chat
      model: llama3-8b
      slo: {ttft: 500ms, tpot: 50ms}
      deployment: {mode: colocated, replicas: 2, card_type: h100-sxm, tp: 1}
      arrivals: {kind: poisson, rate: 2, max_requests: 200}
failures: {card_mtbf: 2000h}
policy:
  serving: {routing: {name: least_loaded, params: {metric: kv}}}
"""
BASE = parse_yaml(BASE_TEXT)
WORKLOADS = {p.stem: parse_yaml(p.read_text()) for p in sorted((REPO / "workloads").glob("*.yaml"))}
# the 100k-card file takes seconds to build: its shape is covered by the 1,024-card ones
TOPOLOGIES = {p.stem: parse_yaml(p.read_text()) for p in sorted((REPO / "topologies").glob("*.yaml"))
              if "100k" not in p.stem}
MOON = {"timestamp": 0, "input_length": 600, "output_length": 10, "hash_ids": [1, 2]}
LOCATED = re.compile(r"^\S[^\n]*?: \S")  # "<where>: <what>", where = file[:line], --set key or a field path

# ---- strategies -------------------------------------------------------------------------------
SPECIAL = [0, -1, 1, 2, 3, 8, 64, 255, 2**31, 2**63, 10**7, 10**30, -(10**30), 0.0, -0.0, 1e-300, 0.5,
           1e300, math.nan, math.inf, -math.inf, True, False, None, "", " ", "0", "-1h", "1ms", "1e400s",
           "1h", "30m", "1y", "5 us", "abc", "80 GiB", "400 Gbps", "4M", "1B", "bogus", "none",
           "least_loaded", "fat_tree", "multi_dc", "h100-sxm", "llama3-8b", "\x00", "caf\xe9", "a" * 300,
           "[1", "*a", "!!python/object:os.system", "{}", "trace", "gamma"]
SCALARS = st.one_of(st.sampled_from(SPECIAL), st.integers(-5, 100), st.floats(), st.text(max_size=12))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6)
YAML_TOKENS = st.sampled_from(["[1", "]", "{a: 1", "*undefined", "&a [*a]", "!!python/object/apply:os.system ['true']",
                               "!!binary AAAA", "!!set {a, b}", "2024-01-01", "1_000", "0x1f", "0o17", ".nan",
                               "-.inf", "~", "'quoted'", '"\\x00"', "9" * 5000, "1" + "0" * 400, "a: b",
                               "- x", "|", ">", "%YAML 1.1", "---", "...", "? [a]", "<<: *a", "\t", "@", "`"])


def _paths(tree: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if len(prefix) > 12:  # do not walk into a deep nest a previous mutation planted
        return out
    if isinstance(tree, dict):
        for k, v in tree.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            out += _paths(v, (*prefix, i))
    return out


def _nested(depth: int) -> Any:
    x: Any = []
    for _ in range(depth):
        x = [x]
    return x


def _mutate(data: Any, tree: Any) -> Any:
    """Apply 1-3 random mutations (replace, delete, add an unknown key, nest, empty) to a copy."""
    tree = copy.deepcopy(tree)
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        path = data.draw(st.sampled_from(_paths(tree)), label="path")
        op = data.draw(st.sampled_from(["replace", "replace", "replace", "delete", "unknown", "nest", "empty",
                                        "wrap"]), label="op")
        if not path:
            if op in ("replace", "nest", "wrap"):
                tree = data.draw(VALUES) if op == "replace" else [tree]
            continue
        parent: Any = tree
        for part in path[:-1]:
            parent = parent[part]
        key = path[-1]
        if op == "replace":
            parent[key] = data.draw(VALUES, label="value")
        elif op == "delete":
            del parent[key]
        elif op == "unknown" and isinstance(parent, dict):
            parent[data.draw(st.text(min_size=1, max_size=10), label="unknown key")] = data.draw(VALUES)
        elif op == "nest":
            parent[key] = _nested(data.draw(st.sampled_from([2, 70, 3000]), label="depth"))
        elif op == "empty":
            parent[key] = type(parent[key])() if isinstance(parent[key], (dict, list, str)) else None
        elif op == "wrap":
            parent[key] = [parent[key]]
    return tree


def _expect_user_error(exc: ClusterSimError) -> None:
    msg = str(exc)
    assert msg and "\n" not in msg and "\r" not in msg, repr(msg)
    assert LOCATED.match(msg), f"message without a location: {msg!r}"


def _boundary(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args)``: its result, or None after a well-formed ClusterSimError (anything else fails)."""
    try:
        out = fn(*args, **kwargs)
    except ClusterSimError as exc:
        _expect_user_error(exc)
        OUTCOMES["refused"] += 1
        return None
    OUTCOMES["accepted"] += 1
    return out


def _cli(capsys: pytest.CaptureFixture[str], argv: list[str]) -> int:
    code = main(argv)
    out, err = capsys.readouterr()
    if code == 0:
        assert err == "", err
        OUTCOMES["accepted"] += 1
        return 0
    OUTCOMES["refused"] += 1
    lines = err.strip().splitlines()
    assert code == 2 and out == "" and len(lines) == 1 and lines[0].startswith("error: "), (code, err[-1000:])
    assert LOCATED.match(lines[0].removeprefix("error: ")), lines[0]
    return 2


def _fuzz(name: str, budget: int) -> Any:
    BUDGET[name] += budget
    return settings(max_examples=budget, deadline=30_000, derandomize=True, database=None, print_blob=False,
                    suppress_health_check=list(HealthCheck))


VARIANTS = [pytest.param(FAST, id="fast"), pytest.param(SLOW, id="slow", marks=pytest.mark.slow)]


# ---- the tests --------------------------------------------------------------------------------
@pytest.mark.parametrize("budget", VARIANTS)
def test_experiment_mappings(budget, repo, monkeypatch):
    """Mutated experiment mappings (the shipped workloads and a small base) through load_config;
    those derived from the small base that load are also checked (topology, plans, engines)."""
    monkeypatch.chdir(repo)
    bases = {"base": BASE, **WORKLOADS}

    @_fuzz("mappings", budget)
    @given(st.data())
    def run(data):
        TALLY["mappings"] += 1
        name = data.draw(st.sampled_from(sorted(bases)), label="base")
        tree = _mutate(data, bases[name])
        if not isinstance(tree, dict):  # load_config takes a mapping or a path; files test the rest
            return
        cfg = _boundary(load_config, tree)
        if cfg is not None and name == "base":
            _boundary(check, cfg)

    run()


KEYS = sorted({".".join(map(str, p)) for p in _paths(BASE) if p} | {
    "policy.pool", "policy.training.scheduler", "policy.training.placement.params.x", "policy.serving.autoscaling",
    "policy.serving.autoscaling.params.interval_s", "policy.serving.batching.max_batch_seqs", "failures.checkpoint_interval",
    "training.generator.params.classes", "training.generator.arrival", "training.jobs.1.cards", "training.jobs.-1.cards",
    "training.jobs.x", "seed.x", "a.b.c", "inference.timeline_interval", "scaling.cards", "training.trace.path"})


@pytest.mark.parametrize("budget", VARIANTS)
def test_set_overrides(budget, repo, tmp_path, monkeypatch, capsys):
    """``cluster-sim validate BASE --set k=v ...`` with generated keys and values (in-process)."""
    monkeypatch.chdir(repo)
    exp = tmp_path / "exp.yaml"
    exp.write_text(BASE_TEXT)
    value = st.one_of(YAML_TOKENS, st.text(max_size=15), st.sampled_from([str(v) for v in SPECIAL]),
                      VALUES.map(lambda v: json.dumps(v, ensure_ascii=False)))
    key = st.one_of(st.sampled_from(KEYS), st.text(max_size=12))

    @_fuzz("overrides", budget)
    @given(st.lists(st.tuples(key, value), min_size=1, max_size=3))
    def run(pairs):
        TALLY["overrides"] += 1
        argv = ["validate", str(exp)]
        for k, v in pairs:  # --set=K=V: a key starting with "-" is not taken for an option by argparse
            argv.append(f"--set={k}={v}")
        _cli(capsys, argv)

    run()


def _corrupt(data: Any, text: str) -> bytes:
    """Text- and byte-level damage to a YAML document."""
    ops = data.draw(st.lists(st.sampled_from(["bom", "crlf", "truncate", "junk", "token", "dup_line", "latin1",
                                              "bomb", "tab", "nothing"]), min_size=1, max_size=3), label="damage")
    raw = text
    for op in ops:
        if op == "crlf":
            raw = raw.replace("\n", "\r\n")
        elif op == "truncate":
            raw = raw[: data.draw(st.integers(0, len(raw)), label="cut")]
        elif op == "token":
            at = data.draw(st.integers(0, len(raw)), label="at")
            raw = raw[:at] + data.draw(YAML_TOKENS, label="token") + raw[at:]
        elif op == "dup_line" and raw:
            lines = raw.splitlines(keepends=True)
            i = data.draw(st.integers(0, len(lines) - 1), label="line")
            raw = "".join(lines[: i + 1] + lines[i:])
        elif op == "bomb":
            raw = ("x0: &x0 [a, a, a, a, a, a, a, a, a, a]\n"
                   + "".join(f"x{i + 1}: &x{i + 1} [{', '.join([f'*x{i}'] * 10)}]\n" for i in range(7)) + raw)
        elif op == "tab":
            raw = raw.replace("  ", "\t", 1)
    body = raw.encode("latin-1", "replace") if "latin1" in ops else raw.encode("utf-8", "surrogatepass")
    if "junk" in ops:
        at = data.draw(st.integers(0, len(body)), label="junk at")
        body = body[:at] + data.draw(st.binary(min_size=1, max_size=8), label="junk") + body[at:]
    return (b"\xef\xbb\xbf" if "bom" in ops else b"") + body


@pytest.mark.parametrize("budget", VARIANTS)
def test_experiment_files(budget, repo, tmp_path, monkeypatch, capsys):
    """``cluster-sim validate FILE`` on damaged YAML (and TOML) renderings of mutated experiments."""
    monkeypatch.chdir(repo)

    @_fuzz("files", budget)
    @given(st.data())
    def run(data):
        TALLY["files"] += 1
        tree = _mutate(data, BASE) if data.draw(st.booleans(), label="mutate") else BASE
        try:
            text = yaml.safe_dump(tree, allow_unicode=True, sort_keys=False)
        except (yaml.YAMLError, RecursionError):  # the harness cannot render it: damage the base instead
            text = BASE_TEXT
        suffix = data.draw(st.sampled_from([".yaml", ".yaml", ".yaml", ".toml"]), label="suffix")
        path = tmp_path / f"exp{suffix}"
        path.write_bytes(_corrupt(data, text))
        _cli(capsys, ["validate", str(path)])

    run()


@pytest.mark.parametrize("budget", VARIANTS)
def test_topologies(budget, repo, tmp_path):
    """Mutated shipped topology specs, as dicts and as damaged YAML files, through load_topology."""
    base_dir = repo / "topologies"

    @_fuzz("topologies", budget)
    @given(st.data())
    def run(data):
        TALLY["topologies"] += 1
        tree = _mutate(data, TOPOLOGIES[data.draw(st.sampled_from(sorted(TOPOLOGIES)), label="base")])
        if data.draw(st.booleans(), label="as file"):
            try:
                text = yaml.safe_dump(tree, allow_unicode=True)
            except (yaml.YAMLError, RecursionError):
                return
            path = tmp_path / "topo.yaml"
            path.write_bytes(_corrupt(data, text))
            _boundary(load_topology, path, base_dir=base_dir)
        elif isinstance(tree, dict):  # load_topology takes a dict or a path; files test the rest
            _boundary(load_topology, tree, base_dir=base_dir)

    run()


def _trace_line(data: Any) -> str:
    kind = data.draw(st.sampled_from(["row", "row", "mutated", "junk", "deep", "bigint", "blank"]), label="line")
    if kind == "row":
        return json.dumps(MOON)
    if kind == "mutated":
        row = _mutate(data, MOON)
        try:
            return json.dumps(row, ensure_ascii=False)
        except (RecursionError, ValueError):
            return "{"
    if kind == "junk":
        return data.draw(st.text(max_size=30), label="junk line")
    if kind == "deep":
        n = data.draw(st.sampled_from([10, 40, 5000, 100_000]), label="depth")
        return '{"timestamp": 1, "hash_ids": ' + "[" * n + "]" * n + "}"
    if kind == "bigint":
        return '{"timestamp": 1' + "0" * data.draw(st.sampled_from([18, 25, 400, 5000])) + "}"
    return ""


CSV_CELLS = st.one_of(st.sampled_from(["2023-11-16 18:15:46.6805900", "2023-11-16", "x", "", "-1", "1e400", "nan",
                                       "3.5", "9" * 400, "2147483648", '"', ",", "0"]), st.integers(0, 5000).map(str),
                      st.text(max_size=10))


@pytest.mark.parametrize("budget", VARIANTS)
def test_traces(budget, tmp_path):
    """Mooncake JSON-lines and Azure CSV files with damaged lines (and gzip), through trace_stats."""

    @_fuzz("traces", budget)
    @given(st.data())
    def run(data):
        TALLY["traces"] += 1
        fmt = data.draw(st.sampled_from(["mooncake", "azure_llm"]), label="format")
        if fmt == "mooncake":
            lines = [_trace_line(data) for _ in range(data.draw(st.integers(0, 4), label="lines"))]
            name = "t.jsonl"
        else:
            rows = data.draw(st.lists(st.tuples(CSV_CELLS, CSV_CELLS, CSV_CELLS), max_size=4), label="rows")
            lines = ["TIMESTAMP,ContextTokens,GeneratedTokens", "2023-11-16 18:15:46.6805900,100,10",
                     *(",".join(r) for r in rows)]
            name = "t.csv"
        text = data.draw(st.sampled_from(["\n", "\r\n"]), label="eol").join(lines)
        body = _corrupt(data, text) if data.draw(st.booleans(), label="damage") else text.encode("utf-8", "replace")
        if data.draw(st.booleans(), label="gzip"):
            body = gzip.compress(body)
            body = body[: data.draw(st.integers(len(body) // 2, len(body)), label="gzip cut")]
            name += ".gz"
        path = tmp_path / name
        path.write_bytes(body)
        _boundary(trace_stats, path, data.draw(st.sampled_from([fmt, None]), label="given format"))

    run()


def test_zz_cases_tried(capsys):
    """The fuzz budget was spent: at least FAST (or SLOW with --runslow) cases per test that ran."""
    ran = {k: v for k, v in TALLY.items() if v}
    if not ran:
        pytest.skip("no fuzz test ran in this session (selected out)")
    for name in ran:
        assert TALLY[name] >= BUDGET[name], f"{name}: tried {TALLY[name]} of {BUDGET[name]} cases"
    with capsys.disabled():
        print(f"\nfuzz: {sum(ran.values()):,} boundary cases tried ({', '.join(f'{k} {v:,}' for k, v in ran.items())}); "
              f"calls accepted {OUTCOMES['accepted']:,}, refused {OUTCOMES['refused']:,}")
