import pytest

from cluster_sim.errors import CatalogError
from cluster_sim.workload.models import model, models


@pytest.mark.parametrize(
    ("name", "published"),
    [("gpt3-175b", 175e9), ("llama3-8b", 8.03e9), ("llama3-70b", 70.6e9), ("llama3-405b", 405.9e9),
     ("deepseek-v3", 671e9), ("qwen3-235b-a22b", 235e9), ("megatron-145.6b", 145.6e9),
     ("megatron-1t", 1008e9)],
)
def test_architecture_reproduces_published_parameter_count(name, published):
    total, _ = model(name).derived_params()
    assert total == pytest.approx(published, rel=0.02)


def test_moe_activated_parameters():
    _, act = model("deepseek-v3").derived_params()
    assert act == pytest.approx(37e9, rel=0.03)
    _, act = model("qwen3-235b-a22b").derived_params()
    assert act == pytest.approx(22e9, rel=0.03)


def test_kv_bytes_per_token():
    # DOMAIN.md 5: 80 layers, 8 kv heads, d_head 128, BF16 -> 327,680 B
    assert model("llama3-70b").kv_bytes_per_token() == 327_680
    # MLA: 61 * (512 + 64) elements * 2 bytes
    assert model("deepseek-v3").kv_bytes_per_token() == 61 * 576 * 2
    # MHA 13B: 2 * 40 * 40 * 128 * 2
    assert model("llama2-13b").kv_bytes_per_token() == 819_200


def test_training_flops_match_megatron_closed_form():
    # 72 B s l h^2 (1 + s/6h + V/12lh) per iteration == (6N + 12 l h s) per token
    m = model("megatron-145.6b")
    s, l, h, v = 2048, m.layers, m.hidden, m.vocab
    closed = 72 * s * l * h**2 * (1 + s / (6 * h) + v / (12 * l * h))
    n = 12 * l * h**2 + v * h  # params without biases/layernorm, as in the paper
    ours = 6 * n + m.attention_flops_per_token(s)
    assert ours * s == pytest.approx(closed, rel=1e-12)
    assert m.train_flops_per_token(s) == pytest.approx(ours, rel=0.01)


def test_decode_flops_formula():
    m = model("llama3-8b")
    assert m.decode_flops(0) == pytest.approx(2 * m.active_params)
    assert m.decode_flops(1000) - m.decode_flops(0) == pytest.approx(4 * 32 * 4096 * 1000)


def test_unknown_model_lists_names():
    with pytest.raises(CatalogError, match="unknown model 'gpt5'; known: .*llama3-70b"):
        model("gpt5")
    assert len(models()) >= 15
