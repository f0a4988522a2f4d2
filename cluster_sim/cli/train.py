"""``cluster-sim train EXP.yaml [--set k=v ...] [--json]``: step time, MFU and days per training job."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..config.schema import TrainingJobConfig
from ..errors import ClusterSimError
from ..experiment import JobEstimate, estimate_jobs, load_cluster
from ..perf.uncertainty import TrainingBand, estimate_band
from ..units import fmt_count
from ..workload.models import model
from ._common import emit_json
from .run import RAW, add_experiment_args, load_experiment

__all__ = ["band", "headline", "hidden_line", "register"]

JSON_KEYS = ("step_time_s", "breakdown", "tokens_per_s", "tflops_per_card", "mfu", "days_to_train")
"""Per-job keys of ``--json`` (DESIGN.md 4); ``band`` (the uncertainty band) is added to them."""


def _job_title(e: JobEstimate) -> str:
    est, p = e.estimate, e.estimate.plan
    title = (f"{e.name}: {est.model} on {est.cards:,} x {'+'.join(est.card_types)}  "
             f"(tp={p.tp} pp={p.pp} dp={p.dp} ep={p.ep} cp={p.cp}, {p.microbatches} micro-batches x "
             f"{p.microbatch_size}, v={p.virtual_stages}, seq {est.seq_len:,}, recompute {p.recompute})")
    return title


def _job_table(e: JobEstimate) -> Table:
    est = e.estimate
    t = Table(title=None)
    t.add_column("component", no_wrap=True)
    t.add_column("seconds", justify="right", no_wrap=True)
    t.add_column("share", justify="right", no_wrap=True)
    total = est.step_time_s
    for k, v in est.breakdown.items():
        t.add_row(k, f"{v:.4g}", f"{v / total:.1%}")
    t.add_row(Text("step time", style="bold"), Text(f"{total:.4g}", style="bold"), "100%")
    return t


def hidden_line(e: JobEstimate) -> str | None:
    """Communication overlapped with compute (not in the step time), or None if nothing is."""
    hidden = e.estimate.hidden
    if not hidden:
        return None
    parts = ", ".join(f"{k} {v:.4g} s" for k, v in hidden.items())
    return f"hidden behind compute (not in the step time): {parts}"


def headline(e: JobEstimate) -> str:
    """One line: MFU, TFLOP/s per card, tokens/s, step, batch, memory and days to train."""
    est = e.estimate
    mem = est.memory.total_bytes / 2**30
    cap = est.memory_capacity_bytes / 2**30
    parts = [f"MFU {est.mfu:.1%}", f"{est.tflops_per_card:.1f} TFLOP/s per card "
             f"({est.hfu_tflops_per_card:.1f} with recompute)",
             f"{fmt_count(est.tokens_per_s)} tokens/s", f"step {est.step_time_s:.3g} s",
             f"global batch {est.global_batch:,} x {est.seq_len:,} = {fmt_count(est.tokens_per_step)} tokens",
             f"memory {mem:.1f} / {cap:.1f} GiB per card"]
    if e.days_to_train is not None and e.tokens is not None:
        parts.append(f"{e.days_to_train:.1f} days to train {fmt_count(e.tokens)} tokens")
    return " | ".join(parts)


def band(e: JobEstimate, job: TrainingJobConfig, topology: object) -> TrainingBand:
    """The estimate of ``e`` at the slow and fast corners of the catalog's confidence.

    The cards are those :func:`~cluster_sim.experiment.estimate_job` picked: the first of the
    job's one card type, or the first of the topology when the job spans several types.
    """
    est = e.estimate
    card_type = est.card_types[0] if len(est.card_types) == 1 else None
    try:
        return estimate_band(model(job.model), est.plan, topology, card_type=card_type,
                             seq_len=est.seq_len, dtype=job.dtype)
    except ClusterSimError as exc:
        raise type(exc)(f"{e.where}: uncertainty band: {exc}") from None


def _json_record(e: JobEstimate, b: TrainingBand, verbose: bool) -> dict:
    """``--json`` keys of one job and its ``band``; ``--verbose`` adds plan, cards, memory and
    hidden seconds."""
    d = e.as_dict()
    rec = {k: d[k] for k in JSON_KEYS}
    rec["band"] = b.ranges()
    if verbose:
        rec |= {k: d[k] for k in ("plan", "cards", "memory_per_card_gib")}
        rec["hidden"] = dict(e.estimate.hidden)
    return rec


def _cmd_train(args: argparse.Namespace, console: Console) -> int:
    cfg = load_experiment(args)
    topology = load_cluster(cfg.cluster.topology, cfg.base_dir)
    estimates = estimate_jobs(cfg, topology)
    jobs = cfg.training.jobs if cfg.training is not None else []
    bands = [band(e, job, topology) for e, job in zip(estimates, jobs, strict=True)]
    if args.json:
        emit_json({e.name: _json_record(e, b, args.verbose) for e, b in zip(estimates, bands, strict=True)})
        return 0
    if not estimates:
        console.print(f"{cfg.name}: no explicit training jobs (training.jobs is empty)")
        return 0
    console.print(f"{cfg.name} on {topology.name} ({topology.n_cards:,} cards)")
    for e, b in zip(estimates, bands, strict=True):
        console.print()
        console.print(Text(_job_title(e), style="bold"), soft_wrap=True)
        console.print(_job_table(e))
        if (line := hidden_line(e)) is not None:
            console.print(Text(line), soft_wrap=True)
        console.print(Text(b.line()), soft_wrap=True)
        console.print(Text(headline(e)), soft_wrap=True)
        for note in (*e.notes, *e.estimate.notes, *b.notes):
            console.print(Text(f"note: {note}"), soft_wrap=True)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``train`` command."""
    p = sub.add_parser(
        "train", help="training step time breakdown, MFU, tokens/s and days to train per job",
        formatter_class=RAW,
        description="Estimate one optimizer step of every job in training.jobs on the experiment's "
        "topology: the breakdown (compute, memory-bound, TP/CP/EP/PP/DP communication, bubble, "
        "optimizer) in seconds and %, MFU, TFLOP/s per card, tokens/s, memory per card and days to "
        "train the job's tokens, and the step time and MFU at the low and high ends of the catalog "
        "fields' confidence (docs/catalog.md).\n\nexamples:\n"
        "  cluster-sim train workloads/train_llama3_70b.yaml\n"
        "  cluster-sim train workloads/train_llama3_70b.yaml --set training.jobs.0.parallel.pp=8 --json")
    add_experiment_args(p)
    p.add_argument("--json", action="store_true",
                   help="print per job step_time_s, breakdown, tokens_per_s, tflops_per_card, mfu, "
                   "days_to_train and band (step_time_s, mfu, tokens_per_s as [low, high]) as "
                   "JSON, and nothing else")
    p.add_argument("--verbose", action="store_true",
                   help="with --json, also plan, cards, memory per card and hidden (overlapped) seconds")
    p.set_defaults(handler=_cmd_train)
