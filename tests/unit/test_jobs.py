"""TrainingJob and JobTable: construction, validation messages, sorting, concat, masks, frames."""

from __future__ import annotations

import time

import numpy as np
import pytest

from cluster_sim.errors import ConfigError
from cluster_sim.workload.jobs import (
    ANY_TYPE,
    COLUMNS,
    KIND_MID,
    KIND_PRETRAIN,
    JobTable,
    TrainingJob,
)
from cluster_sim.workload.parallelism import ParallelPlan


def small(**kw):
    cols = dict(job_id=[0, 1, 2], submit_s=[5.0, 0.0, 5.0], num_cards=[8, 1, 2], duration_s=[10.0, 20.0, 30.0])
    cols.update(kw)
    return JobTable(**cols)


def test_defaults_and_dtypes():
    t = small()
    assert len(t) == 3
    assert t.job_id.dtype == np.int64 and t.submit_s.dtype == np.float64 and t.num_cards.dtype == np.int32
    assert t.card_milli.dtype == np.int16 and t.card_milli.tolist() == [1000] * 3
    assert t.type_mask.dtype == np.uint64 and (t.type_mask == ANY_TYPE).all()
    assert t.model_idx.tolist() == [-1] * 3 and t.tenant.tolist() == [0] * 3
    assert t.priority.dtype == np.int8 and t.preemptible.dtype == np.bool_ and t.kind.dtype == np.int8
    assert t.name is None and t.tenants == ("default",)
    with pytest.raises(ValueError):
        t.num_cards[0] = 3  # columns are read-only


def test_columns_are_copies():
    ids = np.array([0, 1, 2])
    t = small(job_id=ids)
    ids[0] = 99
    assert t.job_id[0] == 0


@pytest.mark.parametrize(
    "kw, msg",
    [
        (dict(submit_s=[0.0, np.nan, 1.0]), "column submit_s: row 1: not a finite number"),
        (dict(duration_s=[1.0, 2.0, 0.0]), "column duration_s: row 2: must be > 0"),
        (dict(num_cards=[1, 0, 1]), "column num_cards: row 1: must be >= 1"),
        (dict(card_milli=[1000, 0, 1000]), "column card_milli: row 1: must be in 1..1000"),
        (dict(card_milli=[1000, 1001, 1000]), "column card_milli: row 1: must be in 1..1000"),
        (dict(card_milli=[500, 1000, 1000]), "column card_milli: row 0: a fractional card share needs num_cards == 1"),
        (dict(job_id=[4, 7, 4]), "column job_id: row 2: duplicate job_id 4"),
        (dict(duration_s=[1.0, 2.0]), "column duration_s has shape (2,), expected (3,)"),
        (dict(num_cards=[1, 1.5, 1]), "column num_cards: row 1: not an integer (1.5)"),
        (dict(model_idx=[0, -1, -1]), "column model_idx: row 0: must be -1 or an index into models"),
        (dict(tenant=[0, 1, 0]), "column tenant: row 1: must index tenants"),
        (dict(type_mask=[ANY_TYPE, 0, 1], card_types=("t4",)), "column type_mask: row 1: empty mask"),
        (dict(type_mask=[ANY_TYPE, 4, 1], card_types=("t4", "a10")), "column type_mask: row 1: bits beyond"),
        (dict(kind=[0, 9, 0]), "column kind: row 1"),
        (dict(priority=[0, 300, 0]), "column priority: row 1: 300 out of range for int8"),
        (dict(submit_s=[0.0, -1.0, 1.0]), "column submit_s: row 1: must be >= 0"),
        (dict(num_cards=["1", "2", "3"]), "column num_cards: expected numbers"),
    ],
)
def test_validation_names_column_and_row(kw, msg):
    with pytest.raises(ConfigError) as e:
        small(**kw)
    assert msg in str(e.value)


def test_sorted_by_submit_then_id():
    t = small(job_id=[9, 3, 4])
    s = t.sorted()
    assert s.job_id.tolist() == [3, 4, 9]
    assert s.submit_s.tolist() == [0.0, 5.0, 5.0]
    assert s.num_cards.tolist() == [1, 2, 8]  # rows move together


def test_take_and_mask():
    t = small(name=np.array(["a", "b", "c"], dtype=object))
    sub = t.take([2, 0])
    assert sub.job_id.tolist() == [2, 0] and sub.name.tolist() == ["c", "a"]
    assert t.take(t.num_cards > 1).job_id.tolist() == [0, 2]
    with pytest.raises(ConfigError, match="duplicate job_id"):
        t.take([0, 0])


def test_card_demand_and_seconds():
    t = JobTable(job_id=[0, 1], submit_s=0.0, num_cards=[4, 1], duration_s=[100.0, 100.0], card_milli=[1000, 250])
    assert t.card_demand.tolist() == [4.0, 0.25]
    assert t.card_seconds.tolist() == [400.0, 25.0]


def test_masks_allowed_types_and_remap():
    t = JobTable(job_id=[0, 1, 2], submit_s=0.0, num_cards=1, duration_s=1.0, card_types=("t4", "a10", "h100-sxm"),
                 type_mask=[ANY_TYPE, 0b001, 0b110])
    assert t.allowed_types(0) == () and t.allowed_types(1) == ("t4",) and t.allowed_types(2) == ("a10", "h100-sxm")
    assert t.mask_of(["a10", "t4"]) == 0b011 and t.mask_of([]) == ANY_TYPE
    assert t.allows("a10").tolist() == [True, False, True]
    assert t.allows("unknown").tolist() == [True, False, False]
    with pytest.raises(ConfigError, match="unknown card type"):
        t.mask_of(["x"])
    r = t.with_card_types(["h100-sxm", "t4"])
    assert r.card_types == ("h100-sxm", "t4")
    assert [r.allowed_types(i) for i in range(3)] == [(), ("t4",), ("h100-sxm",)]
    with pytest.raises(ConfigError, match=r"row 1: job 1 allows only \['t4'\]"):
        t.with_card_types(["a10"])


def test_concat_merges_vocabularies():
    a = JobTable(job_id=[0, 1], submit_s=[0.0, 1.0], num_cards=1, duration_s=1.0, card_types=("t4",),
                 type_mask=[1, ANY_TYPE], models=("llama3-8b",), model_idx=[0, -1], tenants=("x",))
    b = JobTable(job_id=[0], submit_s=[0.5], num_cards=2, duration_s=2.0, card_types=("a10", "t4"),
                 type_mask=[0b01], models=("qwen2.5-7b", "llama3-8b"), model_idx=[1], tenants=("y", "x"), tenant=[0])
    with pytest.raises(ConfigError, match="duplicate job_id"):
        JobTable.concat([a, b])
    c = JobTable.concat([a, b], renumber=True)
    assert c.job_id.tolist() == [0, 1, 2]
    assert c.card_types == ("t4", "a10") and c.models == ("llama3-8b", "qwen2.5-7b") and c.tenants == ("x", "y")
    assert [c.allowed_types(i) for i in range(3)] == [("t4",), (), ("a10",)]
    assert c.model_idx.tolist() == [0, -1, 0]  # b's model 1 (llama3-8b) -> 0 in the merged list
    assert c.tenant.tolist() == [0, 0, 1]
    assert JobTable.concat([]).__len__() == 0


def test_training_job_validation_and_kind():
    j = TrainingJob(name="pre", model="llama3-70b", cards=512, card_type="h100-sxm",
                    parallel=ParallelPlan(tp=8, pp=4, dp=16, microbatches=32), tokens=1e12)
    assert j.kind == "pretrain" and j.types() == ("h100-sxm",)
    assert TrainingJob(name="m", cards=16, duration_s=1.0).kind == "mid"
    assert TrainingJob(name="f", duration_s=1.0).kind == "finetune"
    with pytest.raises(ConfigError, match="does not match the job's 256 cards"):
        TrainingJob(name="x", cards=256, parallel=ParallelPlan(tp=8, pp=4, dp=16), tokens=1.0)
    with pytest.raises(ConfigError, match="needs tokens or duration_s"):
        TrainingJob(name="x")
    with pytest.raises(ConfigError, match="card_type 'a10' is not in allowed_types"):
        TrainingJob(name="x", card_type="a10", allowed_types=("t4",), duration_s=1.0)
    with pytest.raises(ConfigError, match="cards: must be a positive integer"):
        TrainingJob(name="x", cards=0, duration_s=1.0)
    with pytest.raises(ConfigError, match="kind: must be one of"):
        TrainingJob(name="x", duration_s=1.0, kind="inference")


def test_from_jobs():
    jobs = [
        TrainingJob(name="pre", model="llama3-70b", cards=512, card_type="h100-sxm", tokens=1e12, submit_s=10.0,
                    tenant="lab", priority=5),
        TrainingJob(name="ft", model="llama3-8b", cards=8, allowed_types=("a10", "h100-sxm"), duration_s=3600.0,
                    preemptible=True),
        TrainingJob(name="share", cards=1, card_milli=300, duration_s=60.0),
    ]
    with pytest.raises(ConfigError, match="no duration_fn"):
        JobTable.from_jobs(jobs)
    t = JobTable.from_jobs(jobs, duration_fn=lambda j: j.tokens / 1e7, first_id=100)
    assert t.job_id.tolist() == [100, 101, 102]
    assert t.duration_s.tolist() == [1e5, 3600.0, 60.0]
    assert t.card_types == ("h100-sxm", "a10")
    assert [t.allowed_types(i) for i in range(3)] == [("h100-sxm",), ("h100-sxm", "a10"), ()]
    assert t.models == ("llama3-70b", "llama3-8b") and t.model_idx.tolist() == [0, 1, -1]
    assert t.tenants == ("lab", "default") and t.tenant.tolist() == [0, 1, 1]
    assert t.kind.tolist() == [KIND_PRETRAIN, 0, 0] and t.priority.tolist() == [5, 0, 0]
    assert t.preemptible.tolist() == [False, True, False] and t.card_milli.tolist() == [1000, 1000, 300]
    assert t.specs[t.spec_idx[1]].name == "ft" and t.name.tolist() == ["pre", "ft", "share"]
    assert len(JobTable.from_jobs([])) == 0


def test_to_frame_decodes():
    t = JobTable(job_id=[0, 1], submit_s=0.0, num_cards=[16, 1], duration_s=1.0, card_types=("t4", "a10"),
                 type_mask=[0b11, ANY_TYPE], models=("m",), model_idx=[0, -1], kind=[KIND_MID, 0])
    df = t.to_frame()
    assert list(df.columns[: len(COLUMNS)]) == list(COLUMNS)
    assert df["allowed_types"].tolist() == ["t4|a10", ""]
    assert df["model"].iloc[0] == "m" and df["model"].isna().tolist() == [False, True] and df["kind_name"].tolist() == ["mid", "finetune"]
    assert len(JobTable.empty().to_frame()) == 0


def test_million_jobs_fast_and_small():
    n = 1_000_000
    g = np.random.default_rng(0)
    cols = dict(job_id=np.arange(n), submit_s=np.sort(g.uniform(0, 3e7, n)), num_cards=g.integers(1, 9, n),
                duration_s=g.exponential(3600.0, n) + 1.0, tenant=g.integers(0, 4, n), tenants=("a", "b", "c", "d"))
    t0 = time.perf_counter()
    t = JobTable(**cols)
    built = time.perf_counter() - t0
    assert len(t) == n
    # 74 bytes per job: 8 job_id, submit_s, type_mask, duration_s, release_s, deadline_s; 4 num_cards,
    # spec_idx, cpu_milli, memory_mib; 2 card_milli, model_idx, tenant; 1 priority, preemptible, kind, deferrable
    assert t.nbytes == 74 * n
    assert built < 2.0, built  # ~0.1 s on the reference machine; generous for shared CPUs
