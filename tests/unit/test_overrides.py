"""``--set a.b=c`` override values: YAML scalars, with unit strings kept as written."""

from __future__ import annotations

import pytest

from cluster_sim.config.load import apply_overrides


@pytest.mark.parametrize("raw,want", [
    ("true", True), ("false", False), ("True", True), ("7", 7), ("0.5", 0.5), ("[1, 2]", [1, 2]),
    ("1e3", "1e3"), ("2h", "2h"), ("400 Gbps", "400 Gbps"), ("null", None),
])
def test_override_values(raw, want):
    out = apply_overrides({"policy": {"pool": {"name": "shared_pool"}}}, {"policy.pool.params.x": raw})
    got = out["policy"]["pool"]["params"]["x"]
    assert got == want and type(got) is type(want)


def test_a_boolean_reaches_a_pool_policy_as_a_boolean():
    """Was: ``--set policy.pool.params.share_slots=false`` arrived as the string 'false' (a bool
    is an int, and the 'keep unit strings as written' rule kept its spelling) and was refused."""
    from pathlib import Path

    from cluster_sim.config.load import load_config
    from cluster_sim.policies import registry

    path = Path(__file__).resolve().parents[2] / "workloads" / "pool_many_models.yaml"
    cfg = load_config(path, overrides={"policy.pool.params.share_slots": "false"})
    assert cfg.policy.pool.params["share_slots"] is False
    assert registry.make("pool", cfg.policy.pool, where="policy.pool").share_slots is False
