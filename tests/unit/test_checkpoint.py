"""Checkpoint size and write time (perf/checkpoint.py) and the first-order reliability model
(metrics/reliability.py): closed forms and the Young / Daly optima (issue #17 items 3 and 6)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cluster_sim.config import load_config
from cluster_sim.experiment.build import build_jobs, build_layout, failure_model
from cluster_sim.experiment.checkpoints import with_job_checkpoints
from cluster_sim.experiment.cluster import load_cluster
from cluster_sim.metrics.reliability import (
    daly_interval,
    daly_waste,
    job_mtbf,
    young_interval,
    young_waste,
)
from cluster_sim.perf.checkpoint import BYTES_PER_PARAM, checkpoint_plan, host_copy_s, write_time_s
from cluster_sim.rng import Streams
from cluster_sim.workload.models import model
from cluster_sim.workload.parallelism import ParallelPlan


@pytest.mark.parametrize("name", ["gpt3-175b", "llama3-70b", "deepseek-v3"])
def test_checkpoint_bytes_of_shipped_models_are_14_bytes_per_parameter(name):
    n = model(name).total_params
    ck = checkpoint_plan(n, ParallelPlan(tp=8, pp=4, dp=2), cards_per_node=8)
    assert ck.bytes == pytest.approx(n * (2 + 12), rel=1e-12)   # BF16 weights + FP32 master, m, v
    assert BYTES_PER_PARAM == 14.0


def test_writers_are_the_ranks_with_distinct_shards():
    n = model("gpt3-175b").total_params
    no_zero = checkpoint_plan(n, ParallelPlan(tp=8, pp=8, dp=4, zero=0), cards_per_node=8)
    zero1 = checkpoint_plan(n, ParallelPlan(tp=8, pp=8, dp=4, zero=1), cards_per_node=8)
    assert (no_zero.writers, no_zero.writer_nodes) == (64, 8)      # one replica: tp x pp
    assert (zero1.writers, zero1.writer_nodes) == (256, 32)        # optimizer sharded over dp too
    assert no_zero.bytes == zero1.bytes and zero1.bytes_per_writer == pytest.approx(no_zero.bytes_per_writer / 4)


def test_write_time_is_bytes_over_the_tighter_bound():
    b = 1e12
    assert write_time_s(b, writer_nodes=8, node_write_bandwidth=5e9, storage_bandwidth=100e9) == pytest.approx(b / 40e9)
    assert write_time_s(b, writer_nodes=32, node_write_bandwidth=5e9, storage_bandwidth=100e9) == pytest.approx(b / 100e9)
    assert write_time_s(b, writer_nodes=8) == 0.0
    with pytest.raises(ValueError):
        write_time_s(b, writer_nodes=8, storage_bandwidth=-1.0)
    with pytest.raises(ValueError):
        host_copy_s(1e9, 0.0)


def test_young_is_the_argmin_of_the_first_order_model_and_daly_of_the_segment_model():
    C, R, M = 120.0, 600.0, 20 * 3600.0
    taus = np.linspace(60.0, 20000.0, 400_001)
    young = taus[np.argmin(young_waste(C, taus, R, M))]
    daly = taus[np.argmin(daly_waste(C, taus, R, M))]
    step = taus[1] - taus[0]
    assert young == pytest.approx(young_interval(C, M), abs=step)
    assert daly == pytest.approx(daly_interval(C, M), abs=step)
    assert young_interval(C, M) == pytest.approx(math.sqrt(2 * C * M))
    assert daly_interval(C, M) == pytest.approx(math.sqrt(2 * C * M) - C)
    assert job_mtbf(1000 * 3600.0, 1000) == pytest.approx(3600.0)
    with pytest.raises(ValueError):
        daly_interval(3.0, 1.0)


TOPO = {"name": "ft64", "builder": "fat_tree", "system": "hgx-h100", "nodes": 8}
JOB = {"name": "j", "model": "llama3-8b", "cards": 64, "card_type": "h100-sxm", "parallel": {"tp": 8, "zero": 0},
       "seq_len": 4096, "global_batch": 256, "tokens": "0.05T"}


def _model(ck):
    cfg = load_config({"name": "t", "cluster": {"topology": TOPO}, "training": {"jobs": [JOB]},
                       "failures": {"card_mtbf": "2000h", "checkpoint": ck}})
    layout = build_layout(cfg.cluster.topology, loaded=load_cluster(TOPO))
    jobs, _, _ = build_jobs(cfg, layout, Streams(0))
    return with_job_checkpoints(failure_model(cfg.failures), cfg, jobs, layout)


def test_config_section_gives_each_model_job_its_checkpoint():
    fm = _model({"interval": "30m", "storage_bandwidth": "400 Gbps", "node_write_bandwidth": "25 GB/s"})
    jc = fm.jobs[0]
    nbytes = model("llama3-8b").total_params * 14
    assert jc.bytes == pytest.approx(nbytes)
    # zero 0, tp 8: 8 writers on 1 node at 25 GB/s, below the 50 GB/s storage
    assert jc.write_cap_Bps == pytest.approx(25e9) and jc.cost_s == pytest.approx(nbytes / 25e9)
    assert fm.checkpoint_interval_s == 1800.0 and fm.explicit and not fm.cost_explicit
    assert fm.job_progress_factor(0) == 1.0                       # explicit: events, no factor
    closed = _model({"interval": "30m", "node_write_bandwidth": "25 GB/s"})
    assert closed.job_progress_factor(0) == pytest.approx(1800 / (1800 + nbytes / 25e9))
    override = _model({"interval": "30m", "node_write_bandwidth": "25 GB/s", "cost": "5m"})
    assert override.job_progress_factor(0) == pytest.approx(1800 / 2100)


def test_async_stall_is_below_the_sync_stall():
    ck = {"interval": "30m", "node_write_bandwidth": "25 GB/s", "storage_bandwidth": "40 GB/s"}
    sync = _model(ck).jobs[0]
    asyn = _model({**ck, "async": True, "host_copy_bandwidth": "50 GB/s"}).jobs[0]
    nbytes = model("llama3-8b").total_params * 14
    assert asyn.cost_s == pytest.approx(nbytes / 8 / 50e9)        # each of 8 ranks copies its shard
    assert asyn.cost_s < sync.cost_s == pytest.approx(nbytes / 25e9)
