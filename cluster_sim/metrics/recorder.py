"""Turn an engine :class:`~cluster_sim.engine.simulation.RunRecord` into typed DataFrames.

* :func:`jobs_frame`: one row per training job (per-sample metrics: JCT, queueing, slowdown, MFU).
* :func:`timeline_frame`: one row per timeline bin (time-weighted levels, kept apart from samples).
* :func:`segments_frame`: one row per run segment of a job (start to finish/preemption/failure).

Formulas: docs/metrics.md.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..engine.simulation import RunRecord
from ..workload.jobs import KIND_NAMES

__all__ = ["jobs_frame", "segments_frame", "timeline_frame"]


def jobs_frame(rec: RunRecord) -> pd.DataFrame:
    """Per-job records.

    Columns: ``job_id``, ``name`` (if any), ``tenant``, ``kind``, ``num_cards``, ``card_milli``,
    ``priority``, ``submit_s``, ``duration_s`` (isolated run time at reference speed),
    ``release_s`` (earliest start: > submit_s for an off-peak hold), ``deadline_s`` (after submit;
    inf = none),
    ``first_start_s``, ``finish_s``, ``status`` (finished / running / queued / restarting /
    rejected / pending), ``reject_reason``, ``jct_s``, ``queueing_s`` (first start - submit),
    ``wait_s`` (all time queued, including after preemptions and failures), ``slowdown``,
    ``mfu``, ``restarts``, ``preemptions``, ``attained_s``, ``remaining_s``, ``card_type`` (of the
    first placement), ``n_nodes`` / ``n_domains`` / ``n_leaves`` (latest placement),
    ``useful_flops``, ``peak_flop_s``; with ``meta["reliability"]`` (anything can fail, or a
    ``failures.checkpoint`` section) the reliability columns of :func:`_reliability_columns` too.
    """
    j = rec.jobs
    if not j:
        return pd.DataFrame(columns=["job_id", "status", "jct_s", "queueing_s", "slowdown", "mfu"])
    tenants = np.array(rec.meta.get("tenants") or ["default"], dtype=object)
    kinds = np.array(KIND_NAMES, dtype=object)
    types = np.array([*rec.card_types, ""], dtype=object)
    finished = j["status"] == "finished"
    jct = np.where(finished, j["finish_s"] - j["submit_s"], np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        mfu = np.where(j["peak_flop_s"] > 0, j["useful_flops"] / j["peak_flop_s"], np.nan)
        slowdown = jct / j["duration_s"]
    df = pd.DataFrame({
        "job_id": j["job_id"],
        "tenant": tenants[np.minimum(j["tenant"], tenants.size - 1)],
        "kind": kinds[j["kind"]],
        "num_cards": j["num_cards"], "card_milli": j["card_milli"], "priority": j["priority"],
        "submit_s": j["submit_s"], "duration_s": j["duration_s"],
        "release_s": j.get("release_s", j["submit_s"]),
        "deadline_s": j.get("deadline_s", np.full(len(j["submit_s"]), np.inf)),
        "first_start_s": j["first_start_s"], "finish_s": j["finish_s"],
        "status": j["status"], "reject_reason": j["reject_reason"],
        "jct_s": jct, "queueing_s": j["first_start_s"] - j["submit_s"], "wait_s": j["wait_s"],
        "slowdown": slowdown, "mfu": mfu, "restarts": j["restarts"], "preemptions": j["preemptions"],
        "attained_s": j["attained_s"], "remaining_s": j["remaining_s"],
        "card_type": types[j["first_card_type"]],
        "n_nodes": j["n_nodes"], "n_domains": j["n_domains"], "n_leaves": j["n_leaves"],
        "useful_flops": j["useful_flops"], "peak_flop_s": j["peak_flop_s"],
    })
    if rec.meta.get("reliability") and "surviving_card_s" in j:
        df = df.assign(**_reliability_columns(j, rec.t_end_s))
    if "shrinks" in j:   # elastic jobs (engine/cluster/elastic.py)
        df = df.assign(elastic=j["elastic"], shrinks=j["shrinks"],
                       regrows=j["regrows"], shrunk_card_s=j["shrunk_card_s"])
    if "name" in j:
        df.insert(1, "name", j["name"])
    return df


def _reliability_columns(j: dict[str, np.ndarray], t_end: float) -> dict[str, np.ndarray]:
    """Per-job reliability columns (docs/metrics.md, "F2"): interruptions' lost card-seconds by
    cause, restart and checkpoint stalls, ETTR, goodput and effective MFU."""
    cards = j["num_cards"] * j["card_milli"] / 1000.0
    end = np.where(np.isfinite(j["finish_s"]), j["finish_s"], t_end)
    wall = (end - j["first_start_s"]) * cards
    with np.errstate(invalid="ignore", divide="ignore"):
        ettr = np.where(wall > 0, j["surviving_card_s"] / wall, np.nan)
        goodput = np.where(j["held_card_s"] > 0, j["surviving_card_s"] / j["held_card_s"], np.nan)
        emfu = np.where(j["peak_flop_s"] > 0, (j["useful_flops"] - j["lost_flops"]) / j["held_peak_flop_s"],
                        np.nan)
    return {"evictions": j["evictions"], "stall_card_s": j["stall_card_s"],
            "lost_card_s.failure": j["lost_card_s.failure"], "lost_card_s.preemption": j["lost_card_s.preemption"],
            "lost_card_s.eviction": j["lost_card_s"] - j["lost_card_s.preemption"],
            "checkpoint_card_s": j["checkpoint_card_s"], "checkpoints": j["checkpoints"].astype(np.int64),
            "restart_wall_s": j["restart_wall_s"], "held_card_s": j["held_card_s"],
            "held_peak_flop_s": j["held_peak_flop_s"], "surviving_card_s": j["surviving_card_s"],
            "lost_flops": j["lost_flops"], "progress_s": j["progress_s"], "ettr": ettr, "goodput": goodput, "effective_mfu": emfu}


def timeline_frame(rec: RunRecord) -> pd.DataFrame:
    """Time-weighted levels per bin: ``time_s`` (bin start), ``time_end_s``, then one column per
    level (``allocated_cards``, ``busy_cards``, ``queued_jobs``, ``...`` and per card type
    ``allocated_cards.<type>``), each the exact time-average over the bin."""
    cols = ["time_s", "time_end_s", *rec.level_names]
    return pd.DataFrame(rec.timeline, columns=cols)


def segments_frame(rec: RunRecord) -> pd.DataFrame:
    """Run segments, one row per segment and scale-up domain the job holds in it: ``job_id``,
    ``start_s``, ``end_s``, ``domain``, ``num_cards`` (the job's cards in that domain)."""
    s = rec.segments
    if s.size == 0:
        return pd.DataFrame(columns=["job_id", "start_s", "end_s", "domain", "num_cards"])
    rows = s[:, 0].astype(np.int64)
    return pd.DataFrame({"job_id": rec.jobs["job_id"][rows], "start_s": s[:, 1], "end_s": s[:, 2],
                         "domain": s[:, 3].astype(np.int64), "num_cards": s[:, 4].astype(np.int64)})
