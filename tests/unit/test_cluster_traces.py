"""Cluster trace readers against the numbers published in the traces README, and their error messages."""

from __future__ import annotations

import gzip
import re

import numpy as np
import pytest

from cluster_sim.errors import TraceError
from cluster_sim.workload.jobs import ANY_TYPE, KIND_TRACE
from cluster_sim.workload.traces import FORMATS, detect_format, philly, read_trace, trace_stats
from cluster_sim.workload.traces import alibaba as ali
from cluster_sim.workload.traces.common import describe, read_csv, traces_dir

OPENB = "alibaba_gpu_v2023"
POD_HEADER = "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time"


# ---- openb nodes ----------------------------------------------------------------------------
def test_openb_all_nodes(traces):
    inv = ali.read_openb_nodes(traces / OPENB / "openb_node_list_all_node.csv")
    s = inv.stats()
    assert (s["nodes"], s["cpu_only_nodes"], s["gpus"]) == (1523, 310, 6212)
    got = {t: (v["gpus"], v["nodes"]) for t, v in s["by_type"].items()}
    assert got == {"G2": (4392, 549), "t4": (842, 404), "G3": (312, 39), "p100": (265, 134),
                   "v100-32gb": (204, 30), "v100-16gb": (195, 55), "a10": (2, 2)}
    assert s["gpus_per_node"] == {"8": 617, "2": 518, "4": 54, "1": 24}
    assert inv.gpu_types() == ali.OPENB_CARD_TYPES
    spec = inv.to_cluster_spec()
    assert sum(g * c for _, g, c in spec["node_groups"]) == 6212
    assert sum(c for _, _, c in spec["node_groups"]) + spec["cpu_only_nodes"] == 1523
    assert ("G2", 8, 549) in spec["node_groups"] and spec["cpu_only_nodes"] == 310
    gpu_only = ali.read_openb_nodes(traces / OPENB / "openb_node_list_gpu_node.csv")
    assert (len(gpu_only), gpu_only.total_gpus) == (1213, 6212)


def test_card_type_names():
    assert [ali.card_type_name(x) for x in ("P100", "T4", "V100M16", "V100M32", "A10", "G2", "G3")] == \
        ["p100", "t4", "v100-16gb", "v100-32gb", "a10", "G2", "G3"]
    from cluster_sim import catalog

    for name in set(ali.CARD_TYPE_NAMES.values()):
        catalog.accelerator(name)  # every mapped name exists in the catalog


# ---- openb pods -----------------------------------------------------------------------------
def test_openb_default_pod_stats(traces):
    s = ali.openb_pods_stats(traces / OPENB / "openb_pod_list_default.csv")
    assert s["rows"] == 8152
    assert s["num_gpu"] == {"1": 6989, "0": 1088, "8": 44, "2": 16, "4": 15}
    assert s["pods"]["sharing"] == 3078 and s["pods"]["sharing_median_gpu_milli"] == 470
    assert round(100 * s["pods"]["sharing_fraction_of_gpu_pods"], 1) == 43.6
    assert round(100 * s["gpu_capacity"]["sharing_fraction"], 1) == 28.5
    assert round(100 * s["gpu_capacity"]["multi_gpu_fraction"], 1) == 7.3
    assert s["qos"] == {"LS": 4647, "BE": 3398, "Burstable": 100, "Guaranteed": 7}
    assert s["pod_phase"] == {"Running": 5193, "Failed": 1870, "Pending": 897, "Succeeded": 192}
    t = s["times"]
    assert t["scheduled_pods"] == 7255 and t["creation_max_s"] == 12_901_761 and t["creation_sorted"]
    assert round(t["span_days"], 1) == 149.3 and round(t["pods_per_day"], 1) == 54.6
    rt, q = t["run_time_s"], t["queueing_s"]
    assert (round(rt["p50"]), round(rt["p90"]), round(rt["p99"]), rt["max"]) == (616, 7764, 114348, 12_537_496)
    assert (round(q["p50"]), round(q["p90"]), round(q["p99"])) == (2, 106, 890)


def test_openb_pods_as_jobs(traces):
    path = traces / OPENB / "openb_pod_list_default.csv"
    jobs = ali.read_openb_pods(path)
    assert len(jobs) == 7064 and (jobs.kind == KIND_TRACE).all()
    assert jobs.card_types == ali.OPENB_CARD_TYPES and (jobs.type_mask == ANY_TYPE).all()
    assert ((jobs.card_milli < 1000) & (jobs.num_cards == 1)).sum() == 3078
    assert np.bincount(jobs.num_cards).tolist()[1:] == [6989, 16, 0, 15, 0, 0, 0, 44]
    assert jobs.job_id[0] == 0 and jobs.name[0] == "openb-pod-0000"
    assert (np.diff(jobs.submit_s) >= 0).all()  # the file is sorted by creation time
    # the first pod: created and scheduled at 0, deleted at 12,537,496 s
    assert (jobs.submit_s[0], jobs.duration_s[0]) == (0.0, 12_537_496.0)
    # scheduled GPU pods run deletion - scheduled; the rest wait deletion - creation (>= 1 s)
    t = read_csv(path, ["num_gpu", "scheduled_time", "deletion_time", "creation_time", "qos"])
    gpu = t.ints("num_gpu") > 0
    sched = t.floats("scheduled_time", allow_empty=True)[gpu]
    dele, cre = t.floats("deletion_time")[gpu], t.floats("creation_time")[gpu]
    ok = ~np.isnan(sched)
    np.testing.assert_array_equal(jobs.duration_s[ok], dele[ok] - sched[ok])
    np.testing.assert_array_equal(jobs.duration_s[~ok], np.maximum(dele[~ok] - cre[~ok], 1.0))
    assert (~ok).sum() == 861 and jobs.duration_s.min() >= 1.0
    qos = t.text("qos")[gpu]
    assert jobs.preemptible.sum() == (qos == "BE").sum()
    assert set(np.unique(jobs.priority)) <= {0, 1, 2, 3}
    assert (jobs.priority[qos == "Guaranteed"] == 3).all() and (jobs.priority[qos == "LS"] == 2).all()


def test_openb_gpuspec33(traces):
    path = traces / OPENB / "openb_pod_list_gpuspec33.csv"
    s = ali.openb_pods_stats(path)["gpu_spec"]
    assert s["constrained"] == 2388 and round(100 * s["constrained_fraction_of_gpu_pods"], 1) == 33.8
    assert list(s["top"].items())[:4] == [("T4", 1291), ("G2", 331), ("P100", 279), ("V100M16|V100M32", 141)]
    jobs = ali.read_openb_pods(path)
    assert (jobs.type_mask != ANY_TYPE).sum() == 2388
    assert (jobs.type_mask == jobs.mask_of(["t4"])).sum() == 1291
    v100 = jobs.mask_of(["v100-16gb", "v100-32gb"])
    assert (jobs.type_mask == v100).sum() >= 141
    t = read_csv(path, ["num_gpu", "gpu_spec"])
    spec = t.text("gpu_spec")[t.ints("num_gpu") > 0]
    on_t4 = sum(1 for x in spec if x == "" or "T4" in x.split("|"))
    assert jobs.allows("t4").sum() == on_t4 and jobs.allows("a10").sum() < on_t4


VARIANT_ROWS = {"cpu0": 7064, "cpu037": 7336, "cpu050": 7439, "cpu100": 7853, "cpu200": 8832, "cpu235": 9240,
                "cpu250": 9420, "cpu300": 10094, "gpushare20": 8152, "gpushare60": 8152, "gpushare80": 8152,
                "gpushare100": 8152, "gpuspec05": 8152, "gpuspec10": 8152, "gpuspec25": 8152,
                "multigpu20": 8324, "multigpu40": 8746, "multigpu50": 9061}


@pytest.mark.parametrize("variant", sorted(VARIANT_ROWS))
def test_openb_variants(traces, variant):
    path = traces / OPENB / "variants" / f"openb_pod_list_{variant}.csv.gz"
    assert detect_format(path) == "alibaba_openb_pods"
    s = trace_stats(path)
    assert s["rows"] == VARIANT_ROWS[variant]
    gpu_pods = s["pods"]["gpu"]
    nn = int(re.sub(r"\D", "", variant))
    if variant.startswith("cpu"):
        assert round(1000 * s["pods"]["cpu_only"] / s["rows"]) == nn
    elif variant.startswith("gpushare"):
        assert round(100 * s["gpu_capacity"]["sharing_fraction"]) == nn
    elif variant.startswith("gpuspec"):
        assert round(100 * s["gpu_spec"]["constrained_fraction_of_gpu_pods"]) == {5: 5, 10: 10, 25: 25}[nn]
    else:
        assert round(100 * s["gpu_capacity"]["multi_gpu_fraction"]) == nn and s["times"] is None
        with pytest.raises(TraceError, match="pass default_duration_s"):
            ali.read_openb_pods(path)
        jobs = ali.read_openb_pods(path, default_duration_s=600.0)
        assert len(jobs) == gpu_pods and (jobs.submit_s == 0).all() and (jobs.duration_s == 600.0).all()
        assert jobs.sorted().job_id.tolist() == jobs.job_id.tolist()  # file order is kept
        return
    assert len(ali.read_openb_pods(path)) == gpu_pods


# ---- PAI, spot, Philly -----------------------------------------------------------------------
def test_pai_machines(traces):
    s = trace_stats(traces / "alibaba_pai_v2020" / "pai_machine_spec.csv")
    assert s["format"] == "alibaba_pai_machines"
    assert (s["nodes"], s["gpus"], s["cpu_only_nodes"]) == (1897, 6742, 83)
    got = {v["trace_name"]: (v["nodes"], v["gpus"]) for v in s["by_type"].values()}
    assert got == {"P100": (798, 1596), "T4": (497, 994), "MISC": (280, 2240), "V100M32": (135, 1080),
                   "V100": (104, 832)}
    assert set(s["cpu_cores"]) == {"64", "96"} and set(s["memory_gb"]) == {"384", "512"}


def test_spot_nodes(traces):
    inv = ali.read_spot_nodes(traces / "alibaba_spot_gpu_v2026" / "node_info_df.csv")
    s = inv.stats()
    assert (s["nodes"], s["gpus"]) == (4278, 10412)
    got = {t: (v["gpus"], v["nodes"]) for t, v in s["by_type"].items()}
    assert got == {"a100-80gb": (3456, 432), "a10": (2494, 2494), "h800": (1752, 219),
                   "GPU-series-1": (1558, 989), "GPU-series-2": (976, 122), "a800": (176, 22)}
    assert s["gpus_per_node"] == {"1": 3396, "8": 872, "4": 10}
    assert (inv.memory_mib == -1).all()


def test_philly_runtimes(traces):
    path = traces / "philly_derived" / "philly_runtime.csv"
    v = philly.read_runtimes(path)
    assert v.size == 83154 and (v == 0).sum() == 2
    s = philly.stats(path)["runtime_s"]
    assert (round(s["mean"]), round(s["p50"]), round(s["p90"]), round(s["p99"]), s["max"]) == \
        (14613, 1186, 12859, 287283, 4_628_239)
    smp = philly.philly_sampler(path)
    assert smp.quantile(0.5) == 1186 and smp.quantile(0.9) == pytest.approx(12859.4)
    draws = smp.sample(50_000, rng=0)
    assert draws.min() >= 1.0 and np.median(draws) == pytest.approx(1186, rel=0.05)
    np.testing.assert_array_equal(draws, smp.sample(50_000, rng=0))
    assert smp.mean == pytest.approx(14613, rel=0.01)


# ---- registry and detection -------------------------------------------------------------------
def test_registry_and_detection(traces):
    assert set(FORMATS) == {"alibaba_openb_pods", "alibaba_openb_nodes", "alibaba_pai_machines",
                            "alibaba_spot_nodes", "philly_runtime", "azure_llm", "mooncake"}
    assert all(callable(r) and callable(s) for r, s in FORMATS.values())
    cases = {
        OPENB + "/openb_pod_list_default.csv": "alibaba_openb_pods",
        OPENB + "/openb_node_list_all_node.csv": "alibaba_openb_nodes",
        "alibaba_pai_v2020/pai_machine_spec.csv": "alibaba_pai_machines",
        "alibaba_spot_gpu_v2026/node_info_df.csv": "alibaba_spot_nodes",
        "philly_derived/philly_runtime.csv": "philly_runtime",
        "azure_llm_2023/AzureLLMInferenceTrace_code.csv": "azure_llm",
        "mooncake_fast25/conversation_trace.jsonl": "mooncake",
    }
    for rel, fmt in cases.items():
        assert detect_format(traces / rel) == fmt, rel
    with pytest.raises(TraceError, match="unknown trace format"):
        detect_format(traces / "summaries" / "helios_cluster_summary.csv")
    assert len(read_trace(traces / OPENB / "openb_pod_list_default.csv")) == 7064
    with pytest.raises(TraceError, match="unknown trace format 'x'; known: alibaba_openb_pods"):
        trace_stats(traces / OPENB / "openb_pod_list_default.csv", format="x")


def test_traces_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv("CLUSTER_SIM_TRACES", str(tmp_path))
    assert traces_dir() == tmp_path
    monkeypatch.delenv("CLUSTER_SIM_TRACES")
    assert traces_dir().parts[-2:] == ("shared", "traces")


# ---- errors on bad files ----------------------------------------------------------------------
def _pods(tmp_path, *rows, header=POD_HEADER, name="pods.csv"):
    p = tmp_path / name
    p.write_text("\n".join([header, *rows]) + "\n")
    return p


GOOD = "p0,1000,1024,1,500,,LS,Running,0,100,10"


@pytest.mark.parametrize(
    "row, msg",
    [
        ("p1,1000,1024,1,x,,LS,Running,0,100,10", "pods.csv:3: gpu_milli: not an integer ('x')"),
        ("p1,1000,1024,1,1.5,,LS,Running,0,100,10", "pods.csv:3: gpu_milli: not an integer ('1.5')"),
        ("p1,1000,1024,1,1200,,LS,Running,0,100,10", "pods.csv:3: gpu_milli: must be <= 1000, got '1200'"),
        ("p1,1000,1024,-1,100,,LS,Running,0,100,10", "pods.csv:3: num_gpu: must be >= 0, got '-1'"),
        ("p1,1000,1024,2,500,,LS,Running,0,100,10", "pods.csv:3: gpu_milli: a multi-GPU pod (num_gpu=2) must use"),
        ("p1,1000,1024,1,0,,LS,Running,0,100,10", "pods.csv:3: gpu_milli: must be in 1..1000 for a GPU pod"),
        ("p1,1000,1024,1,100,,XX,Running,0,100,10", "pods.csv:3: qos: unknown value 'XX'"),
        ("p1,1000,1024,1,100,,LS,Done,0,100,10", "pods.csv:3: pod_phase: unknown value 'Done'"),
        ("p1,1000,1024,1,100,,LS,Running,50,40,50", "pods.csv:3: deletion_time: earlier than creation_time"),
        ("p1,1000,1024,1,100,,LS,Running,50,100,40", "pods.csv:3: scheduled_time: earlier than creation_time"),
        ("p1,1000,1024,1,100,,LS,Running,,100,10", "pods.csv:3: creation_time: empty"),
        ("p1,1000,1024,1,100,,LS,Running,0,inf,10", "pods.csv:3: deletion_time: not a number ('inf')"),
        ("", "pods.csv:3: num_gpu: empty"),
    ],
)
def test_bad_pod_rows_name_line_and_column(tmp_path, row, msg):
    p = _pods(tmp_path, GOOD, row, GOOD)
    with pytest.raises(TraceError) as e:
        ali.read_openb_pods(p)
    assert str(e.value).startswith(msg), str(e.value)


def test_missing_columns_and_unreadable_files(tmp_path):
    p = _pods(tmp_path, "p0,1000,1024,1", header="name,cpu_milli,memory_mib,num_gpu")
    with pytest.raises(TraceError, match=r"^pods.csv: missing column\(s\) gpu_milli; found: name, cpu_milli, "
                       r"memory_mib, num_gpu$"):
        ali.read_openb_pods(p)
    p = _pods(tmp_path, "p0,1000,1024,1,500,,LS", header="name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,"
              "creation_time")
    with pytest.raises(TraceError, match=r"missing column\(s\) pod_phase, deletion_time, scheduled_time"):
        ali.read_openb_pods(p)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(TraceError, match="empty.csv: empty file"):
        ali.read_openb_pods(tmp_path / "empty.csv")
    with pytest.raises(TraceError, match="no such file"):
        ali.read_openb_pods(tmp_path / "absent.csv")
    with pytest.raises(TraceError, match="not a regular file"):
        trace_stats(tmp_path)
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00\x81garbage")
    with pytest.raises(TraceError, match="bin.csv"):
        trace_stats(tmp_path / "bin.csv", format="philly_runtime")
    (tmp_path / "odd.txt").write_text("hello,world\n1,2\n")
    with pytest.raises(TraceError, match="odd.txt: unknown trace format"):
        trace_stats(tmp_path / "odd.txt")


def test_gzip_and_trailing_blank_lines(tmp_path):
    p = tmp_path / "pods.csv.gz"
    with gzip.open(p, "wt") as f:
        f.write(f"{POD_HEADER}\n{GOOD}\np1,1000,1024,0,0,,BE,Failed,5,6,5\n\n\n")
    assert detect_format(p) == "alibaba_openb_pods"
    jobs = ali.read_openb_pods(p)
    assert len(jobs) == 1 and jobs.card_milli[0] == 500 and jobs.duration_s[0] == 90.0
    assert trace_stats(p)["pods"]["cpu_only"] == 1
    with gzip.open(tmp_path / "bad.csv.gz", "wt") as f:
        f.write(f"{POD_HEADER}\n{GOOD}\n\np2,1,1,1,1000,,LS,Running,0,1,0\n")
    with pytest.raises(TraceError, match="bad.csv.gz:3: num_gpu: empty"):  # a blank line inside counts
        ali.read_openb_pods(tmp_path / "bad.csv.gz")


def test_bad_node_and_runtime_rows(tmp_path):
    p = tmp_path / "nodes.csv"
    p.write_text("sn,cpu_milli,memory_mib,gpu,model\nn0,1000,1024,8,G2\nn1,1000,1024,0,T4\n")
    with pytest.raises(TraceError, match="nodes.csv:3: model: GPU model 'T4' does not agree with a GPU count of 0"):
        ali.read_openb_nodes(p)
    r = tmp_path / "philly_runtime.csv"
    r.write_text("runtime\n1.0\n-3\n")
    with pytest.raises(TraceError, match=r"philly_runtime.csv:3: runtime: must be >= 0, got '-3'"):
        philly.read_runtimes(r)
    r.write_text("runtime\n")
    with pytest.raises(TraceError, match="no data rows"):
        philly.read_runtimes(r)


def test_describe():
    d = describe(np.arange(1, 101, dtype=float))
    assert d["count"] == 100 and d["p50"] == 50.5 and d["p90"] == pytest.approx(90.1) and d["max"] == 100
    assert describe([]) == {"count": 0}
