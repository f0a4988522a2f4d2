"""Sliced cards from the CLI: scenario (d) with the tail models on MIG-like half cards, and the
errors of a bad ``slices`` (exit 2, one line naming the field)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cluster_sim.cli import main

REPO = Path(__file__).resolve().parents[2]
SLICED = str(REPO / "workloads" / "pool_many_models_sliced.yaml")
DEDICATED = str(REPO / "workloads" / "pool_many_models.yaml")
T = 1200.0  # 20 min


@pytest.mark.parametrize("sets,message", [
    (["inference.services.2.deployment.tp=2"],
     "error: inference.services[2].deployment.slices: a sliced replica runs on one slice of one card; "
     "tp and ep must be 1, got tp=2, ep=1"),
    (["inference.services.2.deployment.slices=8"],
     "error: inference.services[2].deployment.slices: 8 slices, at most 7 per h100-sxm card (MIG instances)"),
    (["inference.services.2.deployment.slices=7", "inference.services.2.deployment.replicas=7"],
     "error: inference.services[2].deployment.slices: one of 7 slices of a h100-sxm has 11.1 GiB HBM; "
     "llama3-8b on 1 x h100-sxm (tp=1, ep=1, bf16): weights need 15.0 GiB per card, 9.4 GiB usable "
     "(11.1 GiB HBM - 1.7 GiB activation workspace); 5.7 GiB missing (incl. 0.1 GiB KV for 1,024 tokens)"),
    (["inference.services.2.deployment.replicas=3"],
     "error: inference.services[2].deployment.replicas: 3 replicas on cards of 2 slices; a partitioned "
     "card has exactly 2 replicas, so give a multiple of it"),
    (["policy.pool={name: shared_pool, params: {share_slots: true}}"],
     "error: policy.pool.params.share_slots: shared slots with sliced replicas "
     "(inference.services[2].deployment.slices) are not supported (a sliced pool whose cards other "
     "services hold never starts); use share_slots: false"),
    (["inference.services.0.deployment.interference=0.1"],
     "error: inference.services[0].deployment.interference: 0.1 is the slowdown of co-resident slices; it "
     "needs slices > 1"),
])
def test_bad_slices_exit_2_with_one_line(sets, message, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["run", SLICED, *[x for kv in sets for x in ("--set", kv)], "--set", "duration=1min",
                 "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines() == [message]
    assert not out.exists()   # nothing half-written


def _run(path: str, tmp_path: Path, capsys, *sets: str) -> dict:
    args = [x for kv in ("duration=20min", *sets) for x in ("--set", kv)]
    code = main(["run", path, *args, "--out", str(tmp_path / Path(path).stem), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def test_sliced_tail_models_hold_half_the_cards(tmp_path, capsys):
    sliced = _run(SLICED, tmp_path, capsys)
    dedicated = _run(DEDICATED, tmp_path, capsys, "policy.pool=static_partition")
    # dedicated: 8 + 6 + 22 x 2 = 58 cards; sliced: 8 + 6 + 22 x 1 = 36, serving the whole run
    assert dedicated["inference.cards"] == 58 and sliced["inference.cards"] == 36
    assert dedicated["pool.card_hours.serving"] == pytest.approx(58 * T / 3600, rel=1e-12)
    assert sliced["pool.card_hours.serving"] == pytest.approx(36 * T / 3600, rel=1e-12)
    assert sum(sliced[f"pool.card_hours.{s}"] for s in ("idle", "training", "serving", "moving", "down")) \
        == pytest.approx(128 * T / 3600, rel=1e-9)
    # the same requests are offered; the 22 cards freed go to the training queue
    assert sliced["inference.requests"] == dedicated["inference.requests"]
    assert sliced["pool.card_hours.training"] >= dedicated["pool.card_hours.training"]
    assert sliced["inference.slo_attainment"] >= 0.95


POOLED = "policy.pool={name: shared_pool, params: {lend_after_s: 120}}"


def test_sliced_tail_models_under_shared_pool(tmp_path, capsys):
    """The docs' pooled variant (docs/experiments_pool.md (d)): the card broker claims and lends
    sliced cards (before, a ConfigError on the first sliced pool); the ledger adds up, the same
    requests are offered and the SLO holds."""
    sliced = _run(SLICED, tmp_path, capsys, POOLED)
    whole = _run(DEDICATED, tmp_path, capsys, POOLED)
    hours = T / 3600
    for s in (sliced, whole):
        assert sum(s[f"pool.card_hours.{k}"] for k in ("idle", "training", "serving", "moving", "down")) \
            == pytest.approx(128 * hours, rel=1e-9)
        assert s["pool.claims"] >= 1 and s["pool.card_hours.serving"] > 0
    assert sliced["inference.requests"] == whole["inference.requests"]
    assert sliced["inference.slo_attainment"] >= 0.95
