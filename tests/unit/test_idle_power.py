"""A card with a TDP but no catalog idle power: both engines take the same idle power (15% of
its TDP) and say so; a card with no power at all is noted as excluded."""

from __future__ import annotations

import pytest

from cluster_sim.catalog import accelerator
from cluster_sim.engine.serving.admission import card_power_note
from cluster_sim.engine.simulation import _type_costs
from cluster_sim.perf.inference import ReplicaPerf
from cluster_sim.perf.power import IDLE_FRACTION_OF_TDP, card_power_w


def test_one_idle_rule_for_the_ledger_and_the_replica():
    p800 = accelerator("kunlun-p800")
    assert p800.tdp_w > 0 and not p800.idle_w   # the case this is about
    costs = _type_costs(("kunlun-p800", "h100-sxm"))
    assert costs["type_idle_w"][0] == pytest.approx(IDLE_FRACTION_OF_TDP * p800.tdp_w)
    assert costs["type_idle_w"][1] == accelerator("h100-sxm").idle_w   # a catalog figure wins
    assert card_power_w(p800, "idle") == pytest.approx(costs["type_idle_w"][0])
    assert any("no idle power" in n and "kunlun-p800" in n for n in costs["type_notes"])
    rep = ReplicaPerf("qwen2.5-7b", "kunlun-p800", tp=2)
    assert rep.power_w("idle") == pytest.approx(2 * costs["type_idle_w"][0])


def test_the_serving_note():
    assert "15% of its 400 W TDP" in card_power_note("kunlun-p800", "svc")
    assert card_power_note("h100-sxm", "svc") is None
    assert card_power_note("", "svc") is None
