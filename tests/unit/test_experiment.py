"""Experiment layer: job plans, estimates, simulate() summaries, scaling, compare, the atomic run directory."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from cluster_sim import catalog
from cluster_sim.config import load_config
from cluster_sim.config.schema import TrainingJobConfig
from cluster_sim.errors import CatalogError, ConfigError
from cluster_sim.experiment import (
    ScalingSpec,
    compare,
    estimate_job,
    job_plan,
    load_cluster,
    save_run,
    simulate,
)
from cluster_sim.experiment import store as store_mod
from cluster_sim.experiment.outdir import MARKER
from cluster_sim.experiment.store import RUN_FILES
from cluster_sim.perf.training import estimate_step, pick_cards
from cluster_sim.units import DAY
from cluster_sim.workload.models import model

TOPO = {"name": "ft64", "builder": "fat_tree", "system": "hgx-h100", "nodes": 8}  # 64 H100


def job(**kw):
    base = {"name": "j", "model": "llama3-8b", "cards": 16, "card_type": "h100-sxm",
            "parallel": {"tp": 8}, "seq_len": 4096}
    base.update(kw)
    return TrainingJobConfig.model_validate(base)


def cfg_of(jobs, **kw):
    return load_config({"name": "t", "cluster": {"topology": TOPO}, "training": {"jobs": jobs}, **kw})


@pytest.fixture(scope="module")
def topo():
    return load_cluster(TOPO)


# ---- plans -------------------------------------------------------------------------------------
def test_dp_is_derived_from_cards():
    plan, _ = job_plan(job(cards=64, parallel={"tp": 8, "pp": 2}))
    assert (plan.tp, plan.pp, plan.dp) == (8, 2, 4)
    assert plan.cards == 64


def test_plan_that_does_not_divide_the_cards_names_the_path():
    with pytest.raises(ConfigError) as e:
        job_plan(job(cards=512, parallel={"tp": 8, "pp": 3}), "training.jobs[0]")
    assert str(e.value) == "training.jobs[0].parallel: tp*pp*cp = 24 does not divide the job's 512 cards"


def test_explicit_dp_must_match_cards():
    with pytest.raises(ConfigError, match=r"training.jobs\[2\].parallel: tp\*pp\*dp\*cp = 8\*1\*4\*1 = 32 "
                                          r"does not match the job's 16 cards"):
        job_plan(job(parallel={"tp": 8, "dp": 4}), "training.jobs[2]")


def test_microbatches_from_global_batch():
    plan, notes = job_plan(job(cards=64, parallel={"tp": 8, "pp": 2}, global_batch=256))
    assert plan.dp == 4 and plan.microbatches == 64 and plan.global_batch == 256
    assert notes == ()


def test_microbatches_from_tokens_round_with_a_note():
    # 4M tokens / 4096 = 976.6 sequences over dp=2 -> 488 micro-batches (976 sequences)
    plan, notes = job_plan(job(global_batch_tokens="4M"))
    assert plan.dp == 2 and plan.microbatches == 488
    assert len(notes) == 1 and "976 sequences" in notes[0] and "4M tokens" in notes[0]


def test_default_microbatches():
    assert job_plan(job())[0].microbatches == 1                                   # no pipeline
    assert job_plan(job(cards=32, parallel={"tp": 8, "pp": 4}))[0].microbatches == 32  # 8 * pp, as the engine


def test_explicit_microbatches_contradicting_the_batch_fail():
    with pytest.raises(ConfigError, match=r"parallel.microbatches: 4 micro-batches .* contradicts global_batch"):
        job_plan(job(parallel={"tp": 8, "microbatches": 4}, global_batch=64))
    # within 10%: accepted with a note (the DESIGN example: 4M tokens vs 512 x 8192 = 4.19M)
    plan, notes = job_plan(job(cards=16, parallel={"tp": 8, "microbatches": 250}, seq_len=8192,
                               global_batch_tokens="4M"))
    assert plan.global_batch == 500 and notes


def test_bad_plan_degree_is_path_qualified():
    with pytest.raises(ConfigError, match=r"^training.jobs\[0\].parallel.ep: 3 must divide dp\*tp"):
        job_plan(job(parallel={"tp": 8, "ep": 3}), "training.jobs[0]")


# ---- estimates ---------------------------------------------------------------------------------
def test_estimate_matches_perf_model_and_days(topo):
    j = job(cards=32, parallel={"tp": 8, "pp": 2}, global_batch=64, tokens="1T")
    e = estimate_job(j, topo)
    plan, _ = job_plan(j)
    direct = estimate_step(model("llama3-8b"), plan, topo, pick_cards(topo, 32, "h100-sxm"), seq_len=4096)
    assert e.estimate.step_time_s == pytest.approx(direct.step_time_s)
    assert e.estimate.mfu == pytest.approx(direct.mfu)
    assert e.days_to_train == pytest.approx(1e12 / direct.tokens_per_s / DAY)
    d = e.as_dict()
    for key in ("step_time_s", "breakdown", "tokens_per_s", "tflops_per_card", "mfu", "days_to_train"):
        assert key in d
    assert sum(d["breakdown"].values()) == pytest.approx(d["step_time_s"])


def test_unknown_model_lists_known_names(topo):
    with pytest.raises(CatalogError) as e:
        estimate_job(job(model="gpt5"), topo, "training.jobs[1]")
    msg = str(e.value)
    assert msg.startswith("training.jobs[1].model: unknown model 'gpt5'; known: ") and "llama3-70b" in msg


def test_unknown_and_absent_card_types(topo):
    with pytest.raises(CatalogError, match=r"training.jobs\[0\].card_type: unknown accelerator 'h300'; known: .*h100-sxm"):
        estimate_job(job(card_type="h300"), topo, "training.jobs[0]")
    with pytest.raises(ConfigError, match=r"card_type: the job needs 16 cards of a100-80gb; topology 'ft64' has 64 h100-sxm"):
        estimate_job(job(card_type="a100-80gb"), topo, "training.jobs[0]")


def test_plan_that_does_not_fit_says_by_how_much(topo):
    with pytest.raises(ConfigError, match=r"^training.jobs\[0\]: plan tp=8 .* does not fit llama3-70b .*GiB short"):
        estimate_job(job(model="llama3-70b", cards=8, parallel={"tp": 8}), topo, "training.jobs[0]")


# ---- simulate --------------------------------------------------------------------------------
def test_simulate_one_job_summary(topo):
    cfg = cfg_of([{"name": "a", "model": "llama3-8b", "cards": 32, "card_type": "h100-sxm",
                   "parallel": {"tp": 8, "pp": 2}, "seq_len": 4096, "global_batch": 64, "tokens": "1T"}])
    res = simulate(cfg)
    s = res.summary
    e = res.estimates[0].estimate
    assert s["training.mfu"] == pytest.approx(e.mfu)
    assert s["training.step_time_s"] == pytest.approx(e.step_time_s)
    assert s["training.days_to_train"] == pytest.approx(res.estimates[0].days_to_train)
    price = catalog.accelerator("h100-sxm").price_usd_per_hour
    assert s["training.job.a.cost_usd"] == pytest.approx(s["training.days_to_train"] * 24 * 32 * price)
    assert s["cluster.cards"] == 64 and s["sim.wall_s"] > 0
    assert 0 < s["training.mfu"] <= 1
    # one job with tokens is a cluster of one job: the engine runs it for exactly its days to train
    assert len(res.jobs) == 1 and res.requests.empty
    assert s["training.jct_s.p50"] == pytest.approx(s["training.days_to_train"] * DAY, rel=1e-9)
    assert s["training.queueing_s.p50"] == 0.0
    assert res.plot.available()[0] == "breakdown" and "jct_cdf" in res.plot.available()
    assert list(res.breakdown_table()["job"]) == ["a"]


def test_a_job_without_tokens_is_only_estimated():
    cfg = cfg_of([{"name": "a", "model": "llama3-8b", "cards": 32, "card_type": "h100-sxm", "parallel": {"tp": 8}}])
    res = simulate(cfg)
    assert res.jobs.empty and res.timeline.empty and not any("not s" in n for n in res.notes)
    # ... and a failures section it cannot apply is said, not silently dropped
    res = simulate(cfg_of(cfg.model_dump(exclude_unset=True)["training"]["jobs"], failures={"card_mtbf": "100h"}))
    assert res.jobs.empty and any(n.startswith("failures: not simulated: training.jobs[0]") for n in res.notes)


ONE_JOB = {"name": "j", "model": "llama3-8b", "cards": 64, "card_type": "h100-sxm", "parallel": {"tp": 8},
           "seq_len": 4096, "global_batch": 256, "tokens": "0.05T"}
FAIL = {"card_mtbf": "2000h", "restart_delay": "10m", "checkpoint_cost": "30s", "checkpoint_interval": "1h"}


def test_one_job_with_failures_restarts_and_pays_for_it():
    """Issue item 6: a single explicit job's ``failures:`` section used to be ignored (no engine ran)."""
    clean = simulate(cfg_of([ONE_JOB], seed=4))
    failed = simulate(cfg_of([ONE_JOB], seed=4, failures=FAIL))
    d = 0.05e12 / clean.estimates[0].estimate.tokens_per_s       # isolated run time, closed form
    assert clean.summary["training.jct_s.p50"] == pytest.approx(d, rel=1e-9)
    assert clean.summary["training.restarts"] == 0
    r = failed.summary["training.restarts"]
    assert r >= 1 and failed.jobs["restarts"].iloc[0] == r        # the job holds all 64 cards: every failure hits it
    # JCT = D (I + C) / I (checkpoint stalls) + r * restart delay + lost work, 0 < lost <= r * (I + C)
    i_s, c_s, delay = 3600.0, 30.0, 600.0
    extra = failed.summary["training.jct_s.p50"] - d * (i_s + c_s) / i_s - r * delay
    assert 0.0 < extra <= r * (i_s + c_s)


def test_two_jobs_mfu_is_flops_weighted():
    jobs = [{"name": "a", "model": "llama3-8b", "cards": 16, "card_type": "h100-sxm", "parallel": {"tp": 8}},
            {"name": "b", "model": "llama3-8b", "cards": 48, "card_type": "h100-sxm",
             "parallel": {"tp": 8, "pp": 2}, "global_batch": 24}]
    res = simulate(cfg_of(jobs))
    m = {e.name: e.estimate.mfu for e in res.estimates}
    # same card type: total model FLOP/s over total peak = card-weighted mean of job MFUs
    assert res.summary["training.mfu"] == pytest.approx((16 * m["a"] + 48 * m["b"]) / 64)
    assert "training.step_time_s" not in res.summary  # ambiguous with two jobs
    assert res.summary["training.job.b.cards"] == 48


def test_duplicate_job_names_are_rejected():
    j = {"name": "a", "model": "llama3-8b", "cards": 8, "parallel": {"tp": 8}}
    # caught by the config loader now (before: by estimate_jobs, "duplicate job name")
    with pytest.raises(ConfigError, match=r"training\.jobs\[1\]\.name: duplicate (job )?name 'a'"):
        simulate(cfg_of([j, j]))


def test_scaling_curve_summary_and_dropped_counts():
    cfg = cfg_of([{"name": "a", "model": "llama3-8b", "cards": 8, "card_type": "h100-sxm", "parallel": {"tp": 8}}])
    res = simulate(cfg, scaling=ScalingSpec(cards=(8, 16, 64, 128)))
    df = res.scaling["ft64"]
    assert df["cards"].tolist() == [8, 16, 64]                 # 128 > 64 cards: dropped with a note
    assert any("dropped [128]" in n for n in res.notes)
    assert df["linear_speedup"].iloc[0] == pytest.approx(1.0)
    assert (df["linear_speedup"] <= 1.0 + 1e-9).all()
    assert res.summary["training.linear_speedup"] == pytest.approx(df["linear_speedup"].iloc[-1])
    assert res.summary["scaling.ft64.mfu"] == pytest.approx(df["mfu"].iloc[-1])
    # LS = X(N) / ((N/N0) X(N0))
    x = df["tokens_per_s"].to_numpy()
    assert df["linear_speedup"].iloc[-1] == pytest.approx(x[-1] / (64 / 8 * x[0]))
    assert "scaling" in res.plot.available()
    # issue item 12: the speedup's card count is said, next to the 8-card job's own numbers
    assert "training.linear_speedup is at 64 cards (scaling curve from N0 = 8, weak, on ft64), not at a's 8 cards" \
        in res.notes


def test_scaling_spec_from_mapping_and_job_lookup():
    cfg = cfg_of([{"name": "a", "model": "llama3-8b", "cards": 8, "parallel": {"tp": 8}}])
    spec = ScalingSpec.from_config({"cards": [8, 16], "job": "a", "mode": "strong"})
    assert spec.cards == (8, 16) and spec.mode == "strong" and spec.pick(cfg)[0] == 0
    with pytest.raises(ConfigError, match="scaling.job: no training job named 'zz'; have: a"):
        ScalingSpec(cards=(8,), job="zz").pick(cfg)
    assert ScalingSpec.from_config(None) is None


def test_compare_one_row_per_value(tmp_path):
    cfg = cfg_of([{"name": "a", "model": "llama3-8b", "cards": 32, "card_type": "h100-sxm",
                   "parallel": {"tp": 8, "pp": 2, "microbatches": 8}}])
    table = compare(cfg, "training.jobs.0.parallel.pp", [1, 2], out_dir=tmp_path / "cmp")
    assert table["training.jobs.0.parallel.pp"].tolist() == [1, 2]
    assert table.columns[1] == "training.mfu"
    # pp=2 with 8 micro-batches has a bubble (p-1)/(m+p-1) that pp=1 does not
    assert table["training.job.a.step_time_s"].iloc[0] != table["training.job.a.step_time_s"].iloc[1]
    assert (tmp_path / "cmp" / "compare.csv").is_file()
    assert (tmp_path / "cmp" / "1" / "summary.json").is_file() and (tmp_path / "cmp" / "2" / "report.html").is_file()
    with pytest.raises(ConfigError):
        compare(cfg, "training.jobs.0.parallel.pp", [])


def test_topology_errors_name_the_field():
    with pytest.raises(ConfigError, match=r"cluster.topology: nope.yaml: file not found"):
        simulate(load_config({"cluster": {"topology": "nope.yaml"}}))


# ---- run directory ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_result():
    cfg = cfg_of([{"name": "a", "model": "llama3-8b", "cards": 16, "card_type": "h100-sxm", "parallel": {"tp": 8}}])
    return simulate(cfg, scaling=ScalingSpec(cards=(8, 16)))  # estimate only (no tokens: no engine)


def test_run_directory_contents(small_result, tmp_path):
    out = small_result.save(tmp_path / "run")
    names = {p.name for p in out.iterdir()}
    assert set(RUN_FILES) <= names and {"plots", "estimates.json", "scaling.csv"} <= names
    assert {p.name for p in (out / "plots").iterdir()} == {"breakdown.png", "scaling.png"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["training.mfu"] == pytest.approx(small_result.summary["training.mfu"])
    assert pd.read_parquet(out / "jobs.parquet").empty
    assert "training:" in (out / "config.resolved.yaml").read_text()
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2 and "<script" not in page
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no temporary left over


def test_failed_save_leaves_nothing_half_written(small_result, tmp_path, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(store_mod.html, "render_html", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        save_run(small_result, tmp_path / "run")
    assert list(tmp_path.iterdir()) == []


def test_failed_save_keeps_the_previous_run(small_result, tmp_path, monkeypatch):
    out = save_run(small_result, tmp_path / "run")
    before = (out / "summary.json").read_text()
    monkeypatch.setattr(store_mod.plots, "png_bytes", lambda fig: (_ for _ in ()).throw(OSError("no space")))
    with pytest.raises(ConfigError, match=r"/run: cannot write: no space$"):  # one line, no traceback
        save_run(small_result, out)
    assert (out / "summary.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_save_replaces_an_existing_run_and_keeps_the_users_files(small_result, tmp_path):
    out = save_run(small_result, tmp_path / "run")
    (out / "summary.json").write_text("{}")                     # ours: replaced
    (out / "notes.txt").write_text("mine")                      # the user's: kept
    (out / "plots" / "sketch.png").write_bytes(b"mine")
    save_run(small_result, out)
    assert json.loads((out / "summary.json").read_text())["training.mfu"] == small_result.summary["training.mfu"]
    assert (out / "notes.txt").read_text() == "mine" and (out / "plots" / "sketch.png").read_bytes() == b"mine"
    marker = json.loads((out / MARKER).read_text())
    assert "notes.txt" not in marker["files"] and "summary.json" in marker["files"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_save_refuses_a_directory_it_did_not_write(small_result, tmp_path):
    """Issue item 13: a notes.txt in --out DIR used to be deleted by the run."""
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match=r"mine: directory is not empty \(notes.txt\) and is not a cluster-sim"):
        save_run(small_result, out)
    assert [p.name for p in out.iterdir()] == ["notes.txt"] and sorted(p.name for p in tmp_path.iterdir()) == ["mine"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (save_run(small_result, empty) / "summary.json").is_file()  # an empty directory is fine


def test_save_over_an_older_run_directory_without_marker(small_result, tmp_path):
    out = save_run(small_result, tmp_path / "run")
    (out / MARKER).unlink()                                   # as written before the marker existed
    (out / "notes.txt").write_text("mine")
    save_run(small_result, out)
    assert (out / MARKER).is_file() and (out / "notes.txt").read_text() == "mine"


def test_user_file_clashing_with_a_new_run_file_is_refused(small_result, tmp_path):
    out = save_run(small_result, tmp_path / "run")
    marker = json.loads((out / MARKER).read_text())
    marker["files"].remove("scaling.csv")                     # pretend the user made scaling.csv
    (out / MARKER).write_text(json.dumps(marker))
    (out / "scaling.csv").write_text("mine")
    with pytest.raises(ConfigError, match="scaling.csv was not written by cluster-sim"):
        save_run(small_result, out)
    assert (out / "scaling.csv").read_text() == "mine" and (out / "summary.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


@pytest.mark.parametrize("where", ["under_a_file", "proc", "cwd"])
def test_bad_output_locations_are_one_error(small_result, tmp_path, monkeypatch, where):
    (tmp_path / "file").write_text("x")
    target = {"under_a_file": tmp_path / "file" / "run", "proc": Path("/proc/cluster-sim-run"),
              "cwd": tmp_path}[where]
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"^\S+: (.* is a file|cannot create the output directory: .*|is the "
                                          r"working directory .*)$"):
        save_run(small_result, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_save_refuses_a_file(small_result, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ConfigError, match="exists and is not a directory"):
        save_run(small_result, f)
    assert isinstance(Path(f), Path) and f.read_text() == "x"


# ---- engines -------------------------------------------------------------------------------------
def test_several_jobs_without_length_are_only_estimated():
    jobs = [{"name": "a", "model": "llama3-8b", "cards": 8, "parallel": {"tp": 8}},
            {"name": "b", "model": "llama3-8b", "cards": 8, "parallel": {"tp": 8}}]
    res = simulate(cfg_of(jobs))
    assert res.jobs.empty and any("estimated, not scheduled" in n for n in res.notes)


@pytest.fixture(scope="module")
def engine_result():
    cfg = load_config({
        "name": "eng", "seed": 3, "duration": "1h", "cluster": {"topology": TOPO},
        "training": {"jobs": [{"name": "big", "model": "llama3-8b", "cards": 32, "card_type": "h100-sxm",
                               "parallel": {"tp": 8}, "seq_len": 4096, "global_batch": 64, "tokens": "0.01T"}],
                     "generator": {"kind": "industry_mix", "jobs_per_hour": 30}},
        "inference": {"services": [{"name": "chat", "model": "llama3-8b", "slo": {"ttft": "500ms", "tpot": "50ms"},
                                    "deployment": {"replicas": 2, "card_type": "h100-sxm"},
                                    "arrivals": {"kind": "poisson", "rate": 2}}]}})
    return simulate(cfg)


def test_engines_fill_frames_and_summary(engine_result):
    res = engine_result
    s = res.summary
    assert len(res.jobs) > 1 and "jct_s" in res.jobs.columns
    assert len(res.requests) > 1000 and {"ttft_s", "tpot_s", "e2e_s"} <= set(res.requests.columns)
    assert {"time_s", "allocated_cards", "busy_cards", "available_cards"} <= set(res.timeline.columns)
    assert {"kv_occupancy", "replica", "pool"} <= set(res.serving_timeline.columns)
    assert set(res.tables) == {"segments", "replicas", "services"} and res.trace is not None
    for key in ("training.jct_s.p50", "inference.ttft_s.p99", "inference.slo_attainment", "utilization.allocated"):
        assert key in s, key
    assert 0 <= s["utilization.busy"] <= s["utilization.allocated"] + 1e-12 <= 1 + 1e-12
    # TTFT <= E2E for every finished request
    fin = res.requests.dropna(subset=["e2e_s"])
    assert (fin["ttft_s"] <= fin["e2e_s"] + 1e-12).all()
    # estimates stay under their own keys; the engine's cluster-level MFU wins training.mfu
    assert s["training.job.big.mfu"] == pytest.approx(res.estimates[0].estimate.mfu)
    assert set(res.plot.available()) == {"breakdown", "utilization", "queue_length", "jct_cdf", "latency_cdf",
                                          "kv_occupancy"}


def test_engine_run_directory(engine_result, tmp_path):
    out = engine_result.save(tmp_path / "run")
    assert len(pd.read_parquet(out / "requests.parquet")) == len(engine_result.requests)
    assert len(pd.read_parquet(out / "jobs.parquet")) == len(engine_result.jobs)
    for name in ("segments.parquet", "replicas.parquet", "services.parquet", "serving_timeline.parquet",
                 "trace.json", "plots/utilization.png", "plots/latency_cdf.png", "plots/kv_occupancy.png"):
        assert (out / name).is_file(), name
    assert "traceEvents" in json.loads((out / "trace.json").read_text())


def test_progress_reports_each_phase(engine_result):
    calls = []
    simulate(engine_result.config, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(0.0, 3.0), (1.0, 3.0), (2.0, 3.0), (3.0, 3.0)]
