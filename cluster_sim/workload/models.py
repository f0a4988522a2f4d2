"""Model architectures (dense and MoE) and the FLOP / byte counts derived from them.

Shipped models live in ``workload/data/models.toml``; look them up with :func:`model`.

>>> m = model("llama3-70b")
>>> m.kv_bytes_per_token()      # 2 * 80 layers * 8 kv heads * 128 * 2 bytes
327680
>>> round(model("deepseek-v3").kv_bytes_per_token() / 1e3, 1)   # MLA: 61 * (512 + 64) * 2
70.3
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import math
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Any

from ..errors import CatalogError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["ModelSpec", "build_model", "inline_models", "model", "models", "shipped_models", "use"]

_DTYPE_BYTES = {"bf16": 2, "fp16": 2, "fp8": 1, "int8": 1, "fp32": 4}


@dataclass(frozen=True)
class ModelSpec:
    """A transformer's architecture.

    ``params`` and ``activated_params`` are the published totals when given (0 = derive from
    the architecture). MoE layers have ``experts`` routed experts of width ``moe_ffn_hidden``,
    ``experts_per_token`` of them active per token, plus ``shared_experts``; the first
    ``dense_layers`` layers are dense with width ``ffn_hidden``. ``attention`` is ``mha``,
    ``gqa`` or ``mla`` (DeepSeek: a latent of ``kv_lora_rank`` plus ``rope_head_dim`` per layer).
    FFNs are gated (3 matrices) when ``gated_ffn`` is true, else 2 matrices (GPT).
    ``max_route_nodes`` is node-limited routing: a token's experts sit on at most that many
    scale-up domains (DeepSeek-V3: 4); 0 = no limit. The expert all-to-all uses it.
    """

    name: str
    layers: int
    hidden: int
    heads: int
    vocab: int
    ffn_hidden: int = 0
    kv_heads: int = 0
    head_dim: int = 0
    gated_ffn: bool = False
    attention: str = "mha"
    kv_lora_rank: int = 0
    q_lora_rank: int = 0
    rope_head_dim: int = 0
    experts: int = 0
    experts_per_token: int = 0
    shared_experts: int = 0
    moe_ffn_hidden: int = 0
    dense_layers: int = 0
    max_route_nodes: int = 0
    params: float = 0.0
    activated_params: float = 0.0
    max_context: int = 8192
    dtype: str = "bf16"
    tied_embeddings: bool = False
    source: str = ""

    def __post_init__(self) -> None:
        r = self.max_route_nodes
        if isinstance(r, bool) or not isinstance(r, int) or r < 0:
            raise CatalogError(f"model {self.name}: max_route_nodes must be a whole number >= 0 "
                               f"(0 = no limit), got {r!r:.60}")
        if self.kv_heads == 0:
            object.__setattr__(self, "kv_heads", self.heads)
        if self.head_dim == 0:
            object.__setattr__(self, "head_dim", self.hidden // self.heads)
        if self.ffn_hidden == 0:
            object.__setattr__(self, "ffn_hidden", 4 * self.hidden)

    # ---- structure ----------------------------------------------------------------------
    @property
    def is_moe(self) -> bool:
        """True for mixture-of-experts models."""
        return self.experts > 0

    @property
    def bytes_per_param(self) -> int:
        """Bytes per weight element in the serving/training dtype."""
        return _DTYPE_BYTES[self.dtype]

    @property
    def moe_layers(self) -> int:
        """Number of MoE layers."""
        return self.layers - self.dense_layers if self.is_moe else 0

    def _attn_params(self) -> float:
        h, d = self.hidden, self.head_dim
        if self.attention == "mla":
            q = (h * self.q_lora_rank + self.q_lora_rank * self.heads * (d + self.rope_head_dim)
                 if self.q_lora_rank else h * self.heads * (d + self.rope_head_dim))
            kv = h * (self.kv_lora_rank + self.rope_head_dim) + self.kv_lora_rank * self.heads * 2 * d
            return q + kv + self.heads * d * h
        return h * self.heads * d + 2 * h * self.kv_heads * d + self.heads * d * h

    def _ffn_params(self, width: int) -> float:
        return (3 if self.gated_ffn else 2) * self.hidden * width

    @property
    def embedding_params(self) -> float:
        """Input embedding plus (untied) output projection."""
        return self.vocab * self.hidden * (1 if self.tied_embeddings else 2)

    def derived_params(self) -> tuple[float, float]:
        """(total, activated) parameter counts from the architecture."""
        attn = self._attn_params()
        if not self.is_moe:
            body = self.layers * (attn + self._ffn_params(self.ffn_hidden))
            return body + self.embedding_params, body + self.embedding_params
        dense = self.dense_layers * (attn + self._ffn_params(self.ffn_hidden))
        expert = self._ffn_params(self.moe_ffn_hidden)
        router = self.hidden * self.experts
        moe_total = self.moe_layers * (attn + router + (self.experts + self.shared_experts) * expert)
        moe_act = self.moe_layers * (attn + router + (self.experts_per_token + self.shared_experts) * expert)
        emb = self.embedding_params
        return dense + moe_total + emb, dense + moe_act + emb

    @property
    def total_params(self) -> float:
        """Total parameters N (published value when given)."""
        return self.params or self.derived_params()[0]

    @property
    def active_params(self) -> float:
        """Parameters used per token, N_act (= N for dense models)."""
        if self.activated_params:
            return self.activated_params
        if not self.is_moe:
            return self.total_params
        return self.derived_params()[1]

    # ---- FLOPs ----------------------------------------------------------------------------
    def attention_flops_per_token(self, seq_len: int) -> float:
        """Training attention FLOPs per token, fwd+bwd: ``12 l h s`` (PaLM form, non-causal)."""
        return 12.0 * self.layers * self.heads * self.head_dim * seq_len

    def train_flops_per_token(self, seq_len: int) -> float:
        """Model FLOPs per trained token: ``6 N_act + 12 l h s`` (no recomputation)."""
        return 6.0 * self.active_params + self.attention_flops_per_token(seq_len)

    def prefill_flops(self, tokens: int, context: int = 0) -> float:
        """FLOPs to prefill ``tokens`` new tokens after ``context`` cached ones (causal)."""
        s, c = tokens, context
        attn = 2.0 * self.layers * self.heads * self.head_dim * (s * s + 2 * s * c)
        return 2.0 * self.active_params * s + attn

    def decode_flops(self, context: int) -> float:
        """FLOPs to produce one token at context length ``context``: ``2 N_act + 4 l h c``."""
        return 2.0 * self.active_params + 4.0 * self.layers * self.heads * self.head_dim * context

    # ---- bytes ----------------------------------------------------------------------------
    def weight_bytes(self) -> float:
        """Bytes of all weights in the model dtype."""
        return self.total_params * self.bytes_per_param

    def kv_bytes_per_token(self) -> int:
        """KV-cache bytes per token over all layers (GQA: ``2 l n_kv d``; MLA: ``l (d_c + d_rope)``)."""
        if self.attention == "mla":
            return self.layers * (self.kv_lora_rank + self.rope_head_dim) * self.bytes_per_param
        return 2 * self.layers * self.kv_heads * self.head_dim * self.bytes_per_param


_INT_FIELDS = ("layers", "hidden", "heads", "vocab", "ffn_hidden", "kv_heads", "head_dim", "kv_lora_rank",
               "q_lora_rank", "rope_head_dim", "experts", "experts_per_token", "shared_experts",
               "moe_ffn_hidden", "dense_layers", "max_context")
_ATTENTION = ("mha", "gqa", "mla")
_ACTIVE: contextvars.ContextVar[Mapping[str, ModelSpec] | None] = contextvars.ContextVar(
    "cluster_sim_models", default=None)


def _normalise(name: str) -> str:
    return str(name).strip().lower().replace("_", "-")


def build_model(name: str, raw: Mapping[str, Any], where: str = "models.toml") -> ModelSpec:
    """A :class:`ModelSpec` from a table of its fields, checked field by field.

    Used for the shipped ``models.toml`` and for an experiment's inline ``models:`` section alike;
    every problem is one :class:`CatalogError` naming ``where.name.field``.
    """
    at = f"{where}.{name}"
    if not isinstance(raw, Mapping):
        raise CatalogError(f"{at}: expected a table of ModelSpec fields, got {type(raw).__name__}")
    fields = {f.name for f in dataclasses.fields(ModelSpec)} - {"name"}
    unknown = sorted(set(raw) - fields)
    if unknown:
        raise CatalogError(f"{at}.{unknown[0]}: unknown field; known: {', '.join(sorted(fields))}")
    for k in ("layers", "hidden", "heads", "vocab"):
        if k not in raw:
            raise CatalogError(f"{at}: missing field {k!r}")
    for k, v in raw.items():
        if k in _INT_FIELDS and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
            raise CatalogError(f"{at}.{k}: expected a whole number >= 0, got {v!r:.60}")
        if k in ("params", "activated_params") and (isinstance(v, bool) or not isinstance(v, (int, float))
                                                    or not math.isfinite(v) or v < 0):
            raise CatalogError(f"{at}.{k}: expected a number >= 0 (0 = derive), got {v!r:.60}")
        if k in ("gated_ffn", "tied_embeddings") and not isinstance(v, bool):
            raise CatalogError(f"{at}.{k}: expected true or false, got {v!r:.60}")
        if k == "source" and not isinstance(v, str):
            raise CatalogError(f"{at}.source: expected a string, got {v!r:.60}")
    for k in ("layers", "hidden", "heads", "vocab"):
        if raw[k] < 1:
            raise CatalogError(f"{at}.{k}: must be >= 1, got {raw[k]!r}")
    if raw.get("dtype", "bf16") not in _DTYPE_BYTES:
        raise CatalogError(f"{at}.dtype: one of {', '.join(_DTYPE_BYTES)}")
    if raw.get("attention", "mha") not in _ATTENTION:
        raise CatalogError(f"{at}.attention: one of {', '.join(_ATTENTION)}, got {raw['attention']!r:.40}")
    hidden, heads = raw["hidden"], raw["heads"]
    if not raw.get("head_dim") and hidden % heads:
        raise CatalogError(f"{at}.heads: {heads} heads do not divide hidden = {hidden} "
                           "(give head_dim if the heads are not hidden / heads wide)")
    kv = raw.get("kv_heads") or heads
    if heads % kv:
        raise CatalogError(f"{at}.kv_heads: {kv} KV heads do not divide heads = {heads}")
    if raw.get("experts", 0):
        if not 1 <= raw.get("experts_per_token", 0) <= raw["experts"]:
            raise CatalogError(f"{at}.experts_per_token: must be 1..experts ({raw['experts']})")
        if not raw.get("moe_ffn_hidden"):
            raise CatalogError(f"{at}.moe_ffn_hidden: an MoE model needs its expert width")
    if raw.get("dense_layers", 0) >= raw["layers"] and raw.get("experts", 0):
        raise CatalogError(f"{at}.dense_layers: must be < layers ({raw['layers']})")
    return ModelSpec(name=name, **raw)


def _build(name: str, raw: dict[str, Any]) -> ModelSpec:
    return build_model(name, raw, "models.toml")


@functools.cache
def shipped_models() -> Mapping[str, ModelSpec]:
    """The model specs shipped in ``workload/data/models.toml``."""
    text = resources.files("cluster_sim.workload").joinpath("data").joinpath("models.toml").read_text("utf-8")
    data = tomllib.loads(text)
    return MappingProxyType({_normalise(k): _build(_normalise(k), v) for k, v in data.items()})


def models() -> Mapping[str, ModelSpec]:
    """All model specs by name: shipped, plus the inline ones of the enclosing :func:`use`."""
    return _ACTIVE.get() or shipped_models()


def inline_models(raw: Mapping[str, Any], where: str = "models") -> dict[str, ModelSpec]:
    """Build an experiment's inline ``models:`` section; a shipped name is an error."""
    if not isinstance(raw, Mapping):
        raise CatalogError(f"{where}: expected a mapping of model name to ModelSpec fields")
    out: dict[str, ModelSpec] = {}
    for name, fields in raw.items():
        key = _normalise(name)
        if not key:
            raise CatalogError(f"{where}: a model name must not be empty")
        if key in shipped_models():
            raise CatalogError(f"{where}.{name}: a shipped model has this name; give yours another name")
        if key in out:
            raise CatalogError(f"{where}.{name}: duplicate model (names are case- and underscore-insensitive)")
        out[key] = build_model(key, fields, where)
    return out


@contextlib.contextmanager
def use(specs: Mapping[str, ModelSpec]) -> Iterator[Mapping[str, ModelSpec]]:
    """Make ``specs`` visible to :func:`model` inside the ``with`` block (this context only).

    The block sees the shipped models plus ``specs``, never those of an enclosing block.
    """
    current = shipped_models()
    clash = sorted(set(current) & set(specs))
    if clash:
        raise CatalogError(f"models.{clash[0]}: already defined; give your model another name")
    table = MappingProxyType({**current, **specs})
    token = _ACTIVE.set(table)
    try:
        yield table
    finally:
        _ACTIVE.reset(token)


def model(name: str | ModelSpec) -> ModelSpec:
    """Look up a model (shipped or in scope); an unknown name lists the valid ones."""
    if isinstance(name, ModelSpec):
        return name
    table = models()
    key = _normalise(name)
    if key not in table:
        raise CatalogError(f"unknown model {name!r}; known: {', '.join(sorted(table))}")
    return table[key]
