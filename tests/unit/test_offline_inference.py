"""Offline (batch) inference jobs: the closed-form run time, the job table, the config.

* ``offline_schedule`` against an independent computation: requests dealt to replicas one by
  one, each replica's batches run prefill group by prefill group and decode iteration by
  iteration with ``decode_time_s`` (no closed-form stretch), the slowest replica's sum.
* ``processed`` against the same loop's per-batch finish times.
* The ``offline_inference`` kind through ``JobTable`` (from_jobs, concat, take, to_frame).
* Schema and build errors: one line, field-named, exit 2 from the CLI.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from cluster_sim.cli import main
from cluster_sim.config import load_config
from cluster_sim.errors import ConfigError
from cluster_sim.experiment.build import build_layout
from cluster_sim.experiment.offline import offline_jobs
from cluster_sim.perf.inference import ReplicaPerf, causal_pairs
from cluster_sim.perf.offline import batch_time_s, largest_batch, offline_schedule
from cluster_sim.workload.jobs import KIND_NAMES, KIND_OFFLINE, JobTable, TrainingJob


def _loop_batch(perf, b, prompt, output, max_tokens):
    """One batch, iteration by iteration: prefill groups of k prompts, then output-1 decodes."""
    k = max(1, max_tokens // prompt)
    t, left = 0.0, b
    while left:
        j = min(k, left)
        t += perf.prefill_time_s(j * prompt, j * causal_pairs(prompt))
        left -= j
    ctx = b * (prompt + 1)
    for _ in range(output - 1):
        t += perf.decode_time_s(b, ctx)
        ctx += b
    return t


def _loop_job(perf, requests, prompt, output, replicas, max_seqs, max_tokens):
    share = [0] * replicas
    for r in range(requests):
        share[r % replicas] += 1
    kv_fit = perf.kv_capacity_tokens // (prompt + output)
    ends = []  # (time, requests) of every batch on every replica
    for n in share:
        t = 0.0
        b_max = min(kv_fit, max_seqs, max(share))
        while n:
            b = min(b_max, n)
            t += _loop_batch(perf, b, prompt, output, max_tokens)
            ends.append((t, b))
            n -= b
    return max(t for t, _ in ends), ends


@pytest.mark.parametrize(("model", "card", "tp", "requests", "prompt", "output", "replicas", "max_seqs", "max_tokens"), [
    ("llama3-8b", "h100-sxm", 1, 1000, 700, 300, 3, 256, 8192),   # KV-bound batch, 334/333/333 split
    ("llama3-8b", "a100-80gb", 2, 37, 3000, 64, 2, 8, 4096),       # max_batch-bound, one prompt per prefill
    ("llama2-13b", "h100-sxm", 1, 5, 100, 1, 1, 256, 8192),        # one output token: prefill only
])
def test_schedule_matches_an_iteration_loop(model, card, tp, requests, prompt, output, replicas, max_seqs,
                                            max_tokens):
    perf = ReplicaPerf(model, card, tp=tp)
    s = offline_schedule(perf, requests=requests, prompt=prompt, output=output, replicas=replicas,
                         max_batch_seqs=max_seqs, max_batch_tokens=max_tokens)
    want, ends = _loop_job(perf, requests, prompt, output, replicas, max_seqs, max_tokens)
    assert s.duration_s == pytest.approx(want, rel=1e-9)
    share = math.ceil(requests / replicas)
    assert s.batch == min(perf.kv_capacity_tokens // (prompt + output), max_seqs, share)
    assert s.batch_s == pytest.approx(_loop_batch(perf, s.batch, prompt, output, max_tokens), rel=1e-9)
    assert (s.full_batches, s.last_batch) == divmod(share, s.batch)
    # processed(w): the requests of every batch (on every replica) that ended by w, before the end
    for w in np.linspace(0.0, s.duration_s * 0.999, 23):
        full = [b for t, b in ends if t <= w + 1e-12 and b == s.batch]
        assert s.processed(w) == sum(full)
    assert s.processed(s.duration_s) == requests


def test_batch_is_the_kv_limit_and_not_fitting_is_an_error():
    perf = ReplicaPerf("llama3-8b", "h100-sxm")
    cap = perf.kv_capacity_tokens
    assert largest_batch(perf, 1000, 1000, 10**6) == cap // 2000
    assert largest_batch(perf, 1000, 1000, 4) == 4
    with pytest.raises(ConfigError, match="do not fit the replica's KV cache"):
        largest_batch(perf, cap, 1, 256)
    assert batch_time_s(perf, 0, 10, 10) == 0.0


def test_offline_kind_round_trips_the_job_table():
    off = TrainingJob(name="batch", model="llama3-8b", cards=8, card_type="h100-sxm", duration_s=3600.0,
                      tokens=1e9, kind="offline_inference", deferrable=True, deadline_s=86400.0)
    tr = TrainingJob(name="ft", cards=4, duration_s=60.0)
    t = JobTable.from_jobs([tr, off])
    assert KIND_NAMES[KIND_OFFLINE] == "offline_inference"
    assert t.kind.tolist() == [0, KIND_OFFLINE]
    both = JobTable.concat([JobTable.empty(("a100-80gb",)), t.take([1]), t.take([0])], renumber=True)
    assert both.kind.tolist() == [KIND_OFFLINE, 0] and both.name.tolist() == ["batch", "ft"]
    df = both.sorted().to_frame()
    row = df[df["name"] == "batch"].iloc[0]
    assert (row["kind_name"], row["model"], row["allowed_types"]) == ("offline_inference", "llama3-8b", "h100-sxm")
    assert (bool(row["deferrable"]), row["deadline_s"], row["duration_s"]) == (True, 86400.0, 3600.0)
    with pytest.raises(ConfigError, match="column kind"):
        JobTable(job_id=[0], submit_s=[0.0], num_cards=[1], duration_s=[1.0], kind=[len(KIND_NAMES)])


JOB = {"name": "b", "model": "llama3-8b", "requests": 1000, "prompt_tokens": 500, "output_tokens": 100,
       "cards": 8, "tp": 1}
TOPO = {"builder": "fat_tree", "system": "hgx-h100", "nodes": 1}


def _cfg(job=None, topo=None):
    return {"cluster": {"topology": topo or TOPO}, "training": {"offline_jobs": [{**JOB, **(job or {})}]}}


def test_build_gives_the_closed_form_duration_and_one_batch_quantum():
    cfg = load_config(_cfg())
    off = offline_jobs(cfg, build_layout(cfg.cluster.topology))
    s = offline_schedule(ReplicaPerf("llama3-8b", "h100-sxm"), requests=1000, prompt=500, output=100, replicas=8)
    t = off.table
    assert t.duration_s.tolist() == [s.duration_s] and t.kind.tolist() == [KIND_OFFLINE]
    assert off.quantum_s == {"b": s.batch_s} and t.specs[0].tokens == 1000 * 600
    assert off.hooks["b"](np.arange(8), 0.3) == pytest.approx((1.0, float("nan")), nan_ok=True)


@pytest.mark.parametrize(("job", "topo", "message"), [
    ({"cards": 6, "tp": 4}, None, "training.offline_jobs[0]: cards: 6 is not a multiple of tp 4"),
    ({"model": "llama3-70b", "tp": 1}, None, "training.offline_jobs[0].tp: llama3-70b does not fit 1 h100-sxm"),
    ({"prompt_tokens": 8000, "output_tokens": 500}, None,
     "training.offline_jobs[0].output_tokens: prompt_tokens + output_tokens = 8,500 exceeds llama3-8b's context"),
    ({"card_type": "a100-80gb"}, None, "training.offline_jobs[0].card_type: 'a100-80gb' is not in the cluster"),
    ({"requests": 0}, None, "training.offline_jobs[0].requests"),
    ({"batch_size": 4}, None, "training.offline_jobs[0].batch_size"),
    ({"name": "x"}, None, None),  # a duplicate of training.jobs[0]: see below
])
def test_bad_offline_jobs_are_one_line_exit_2(job, topo, message, tmp_path, capsys):
    import yaml

    cfg = _cfg(job, topo)
    if message is None:
        cfg["training"]["jobs"] = [{"name": "x", "model": "llama3-8b", "cards": 8, "duration": "1h"}]
        message = "training.offline_jobs[0].name: 'x' is also a training.jobs name"
    path = tmp_path / "e.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    code = main(["run", str(path), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert message in err[0]
    assert not (tmp_path / "out").exists()


def test_validate_shows_each_offline_jobs_schedule(tmp_path, capsys):
    import yaml

    path = tmp_path / "e.yaml"
    path.write_text(yaml.safe_dump(_cfg()), encoding="utf-8")
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    s = offline_schedule(ReplicaPerf("llama3-8b", "h100-sxm"), requests=1000, prompt=500, output=100, replicas=8)
    assert "training: cluster engine built (1 offline inference job)" in out
    assert (f"training.offline_jobs[0] b: 1,000 requests on 8 h100-sxm replicas, batch {s.batch} "
            f"({s.batch_s:.1f} s), {s.duration_s:,.0f} s at reference speed") in out


def test_offline_jobs_checkpoint_nothing_and_get_their_quantum():
    from cluster_sim.experiment.build import (
        CHECKPOINT_BYTES_PER_PARAM,
        build_simulation,
        checkpoint_bytes,
    )
    from cluster_sim.workload.models import model as model_spec

    raw = _cfg()
    raw["training"]["jobs"] = [{"name": "ft", "model": "llama3-8b", "cards": 8, "duration": "1h"}]
    raw["training"]["generator"] = {"kind": "uniform", "n_jobs": 2, "jobs_per_hour": 1.0,
                                    "params": {"mean_duration_s": 60.0, "num_cards": 2}}
    cfg = load_config(raw)
    sim = build_simulation(cfg)
    eng = sim.training
    names = eng.table.name.tolist()
    size = checkpoint_bytes(cfg, sim, 1e9)
    rows = {n: names.index(n) for n in ("ft", "b")}
    assert size(rows["b"]) == 0.0
    assert size(rows["ft"]) == model_spec("llama3-8b").total_params * CHECKPOINT_BYTES_PER_PARAM
    gen = [r for r, n in enumerate(names) if n not in rows]
    assert [size(r) for r in gen] == [2e9, 2e9]
    s = sim.meta["offline_jobs"]["b"]
    assert eng.quantum == {rows["b"]: s["batch_s"]} and eng.offline[rows["b"]] and not eng.offline[rows["ft"]]
