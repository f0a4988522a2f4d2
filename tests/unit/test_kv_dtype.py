"""``inference.services[*].kv_dtype`` (and ``training.offline_jobs[*].kv_dtype``): the KV cache's
element type reaches the replica's perf model; FP8 halves a BF16 cache's bytes per token."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster_sim.cli import main
from cluster_sim.config.load import load_config
from cluster_sim.experiment.build import services_from_config

WL = Path(__file__).resolve().parents[2] / "workloads" / "serving_13b_colocated_vs_pd.yaml"


def _perf(**sets):
    cfg = load_config(WL, overrides={"inference.services.0.arrivals.max_requests": 10, **sets})
    return services_from_config(cfg)[0].pools[0].perf


def test_fp8_kv_halves_the_bytes_and_doubles_the_tokens():
    bf16, fp8 = _perf(), _perf(**{"inference.services.0.kv_dtype": "fp8"})
    assert bf16.kv_dtype is None and fp8.kv_dtype == "fp8"
    assert fp8.kv_bytes_per_token == pytest.approx(bf16.kv_bytes_per_token / 2, rel=1e-12)
    assert fp8.weight_bytes_per_card == bf16.weight_bytes_per_card   # the weights stay in dtype
    assert fp8.kv_capacity_tokens in (2 * bf16.kv_capacity_tokens, 2 * bf16.kv_capacity_tokens + 1)


def test_kv_dtype_defaults_to_the_weights_dtype():
    same = _perf(**{"inference.services.0.kv_dtype": "bf16"})
    assert same.kv_capacity_tokens == _perf().kv_capacity_tokens


def test_an_unknown_kv_dtype_is_one_line_and_exit_2(capsys):
    assert main(["validate", str(WL), "--set", "inference.services.0.kv_dtype=fp4"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "inference.services[0].kv_dtype" in err[0]
