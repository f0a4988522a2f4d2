import pytest

from cluster_sim.errors import CatalogError
from cluster_sim.workload.models import model, models


@pytest.mark.parametrize(
    ("name", "published"),
    [("gpt3-175b", 175e9), ("llama3-8b", 8.03e9), ("llama3-70b", 70.6e9), ("llama3-405b", 405.9e9),
     ("deepseek-v3", 671e9), ("qwen3-235b-a22b", 235e9), ("megatron-145.6b", 145.6e9),
     ("megatron-1t", 1008e9),
     # issue #15 item 7: published configs (papers / HF config.json), published totals
     ("opt-125m", 125e6), ("opt-1.3b", 1.3e9), ("opt-2.7b", 2.65e9), ("opt-6.7b", 6.7e9), ("opt-13b", 13e9),
     ("opt-30b", 30e9), ("opt-66b", 66e9), ("opt-175b", 175e9),
     ("llama-7b", 6.7e9), ("llama-13b", 13.0e9), ("llama-33b", 32.5e9), ("llama-65b", 65.2e9),
     ("llama2-7b", 6.74e9), ("llama2-13b", 13.0e9), ("llama2-70b", 69.0e9),
     ("qwen3-0.6b", 0.6e9), ("qwen3-1.7b", 1.7e9), ("qwen3-4b", 4.0e9), ("qwen3-8b", 8.2e9),
     ("qwen3-14b", 14.8e9), ("qwen3-32b", 32.8e9), ("mixtral-8x7b", 46.7e9), ("palm-540b", 540.35e9)],
)
def test_architecture_reproduces_published_parameter_count(name, published):
    total, _ = model(name).derived_params()
    assert total == pytest.approx(published, rel=0.02)
    assert model(name).source


def test_every_shipped_model_states_its_published_count_within_2_percent():
    for name, m in models().items():
        assert m.source, name
        if m.params:
            assert m.derived_params()[0] == pytest.approx(m.params, rel=0.02), name


def test_new_architectures_have_their_published_shapes():
    # OPT: multi-head attention, 4h ReLU FFN, tied embeddings
    opt = model("opt-66b")
    assert (opt.kv_heads, opt.ffn_hidden, opt.gated_ffn, opt.tied_embeddings) == (72, 4 * 9216, False, True)
    assert opt.kv_bytes_per_token() == 2 * 64 * 9216 * 2  # MHA: the whole hidden per layer, K and V
    # PaLM: multi-query attention, one KV head of width 256
    assert model("palm-540b").kv_bytes_per_token() == 2 * 118 * 1 * 256 * 2
    # Mixtral: top-2 of 8 experts in every layer
    _, act = model("mixtral-8x7b").derived_params()
    assert act == pytest.approx(12.9e9, rel=0.03)
    # Qwen3: 128-wide heads even where heads x 128 != hidden
    assert model("qwen3-32b").head_dim * model("qwen3-32b").heads == 8192 != model("qwen3-32b").hidden


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
