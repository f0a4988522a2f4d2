"""The perf model protocols (perf/base.py): the real models and the test double satisfy them."""

from __future__ import annotations

import math

import pytest

from cluster_sim.perf.base import ReplicaPerfModel, TrainingStepModel
from cluster_sim.perf.inference import ReplicaPerf
from cluster_sim.perf.linear_serving import LinearServingPerf


class _NoStretch:
    """A replica model without ``decode_stretch_s``: the serving engine could not run it."""

    kv_capacity_tokens = 1000
    kv_bytes_per_token_unique = 1.0

    def prefill_time_s(self, new_tokens, attn_pairs=None):
        return 0.0

    def decode_iterations_within(self, batch, context_tokens, budget_s):
        return 0

    def mixed_iteration_time_s(self, prefill_tokens, decode_batch, context_tokens, attn_pairs=None):
        return 0.0


def test_real_replica_model_and_the_test_double_are_replica_perf_models():
    assert isinstance(ReplicaPerf("megatron-7.5b", "h100-sxm"), ReplicaPerfModel)
    assert isinstance(LinearServingPerf(prefill_s=0.25, decode_s=0.125), ReplicaPerfModel)
    assert not isinstance(_NoStretch(), ReplicaPerfModel)   # the check can fail


def test_the_engine_job_speed_hooks_are_training_step_models():
    from cluster_sim.config import load_config
    from cluster_sim.experiment.build import build_simulation

    sim = build_simulation(load_config("workloads/train_llama3_70b.yaml"))
    hooks = list(sim.training.job_speed.values())
    assert hooks and all(isinstance(h, TrainingStepModel) for h in hooks)
    cards = sim.layout.topology.cards_by_type()[sim.layout.card_types[0]]
    speed, mfu = hooks[0](cards[:sim.training.table.num_cards[0]], 1.0)
    assert speed > 0 and 0 < mfu < 1 and not math.isnan(speed)
    assert not isinstance(object(), TrainingStepModel)


@pytest.mark.parametrize("perf", [LinearServingPerf(prefill_s=0.25, decode_s=0.125, decode_s_per_context_token=1e-3),
                                  ReplicaPerf("megatron-7.5b", "h100-sxm")])
def test_protocol_methods_agree_with_each_other(perf):
    # decode_iterations_within is the inverse of decode_stretch_s, for both models
    k = perf.decode_iterations_within(4, 1000.0, 2.0)
    assert perf.decode_stretch_s(4, 1000.0, k) <= 2.0 < perf.decode_stretch_s(4, 1000.0, k + 1)
