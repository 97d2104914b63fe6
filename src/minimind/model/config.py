"""`MiniMindConfig`: every shape and switch of a MiniMind model, checked on construction.

Field names are upstream MiniMind's (and Hugging Face's), so an upstream config reads
across unchanged. The defaults are MiniMind2-small (26M); named presets for the other
published sizes live in `minimind/conf/model/*.yaml` and load with `MiniMindConfig.from_preset`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from minimind.errors import MiniMindError

ATTENTION_BACKENDS = ("sdpa", "eager")


class ConfigError(MiniMindError, ValueError):
    """A model configuration that cannot work; the message says what to change."""


def swiglu_intermediate_size(hidden_size: int) -> int:
    """MiniMind2's default MLP width: 8/3 of hidden (SwiGLU keeps FLOPs of a 4x MLP), rounded up to 64."""
    return 64 * ((int(hidden_size * 8 / 3) + 63) // 64)


@dataclass
class MiniMindConfig:
    # Shapes
    hidden_size: int = 512
    num_hidden_layers: int = 8
    num_attention_heads: int = 8
    num_key_value_heads: int = 2  # < heads: GQA, == heads: MHA, 1: MQA
    head_dim: int | None = None  # None: hidden_size // num_attention_heads
    intermediate_size: int | None = None  # None: swiglu_intermediate_size(hidden_size)
    vocab_size: int = 6400
    max_position_embeddings: int = 32768
    # Positions and normalisation
    rope_theta: float = 1e6
    rope_scaling: dict[str, Any] | None = None  # YaRN: {"type": "yarn", "factor": 16, ...}
    rms_norm_eps: float = 1e-5
    qk_norm: bool = False  # per-head RMSNorm on q and k (the minimind-3 layout)
    hidden_act: str = "silu"
    # Embeddings and regularisation
    tie_word_embeddings: bool = True
    dropout: float = 0.0
    initializer_range: float = 0.02
    # Attention kernel: "sdpa" (torch scaled_dot_product_attention, flash on GPU) or
    # "eager" (explicit softmax(QK^T/sqrt(d)), can return the attention weights).
    attn_implementation: str = "sdpa"
    # Mixture of experts (ignored unless use_moe)
    use_moe: bool = False
    num_experts: int = 4
    num_experts_per_tok: int = 2
    n_shared_experts: int = 0
    moe_intermediate_size: int | None = None  # None: intermediate_size
    norm_topk_prob: bool = True
    router_aux_loss_coef: float = 0.01
    # Special tokens of the MiniMind tokenizer
    bos_token_id: int = 1
    eos_token_id: int = 2
    pad_token_id: int = 0
    # Upstream keys that carry no meaning here are kept so configs round-trip.
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        head_dim_given = self.head_dim is not None
        if not head_dim_given:
            self.head_dim = self.hidden_size // max(self.num_attention_heads, 1)
        if self.intermediate_size is None:
            self.intermediate_size = swiglu_intermediate_size(self.hidden_size)
        if self.moe_intermediate_size is None:
            self.moe_intermediate_size = self.intermediate_size
        if self.rope_scaling is not None:
            self.rope_scaling = dict(self.rope_scaling)
        self.validate(head_dim_given)

    def validate(self, head_dim_given: bool = True) -> None:
        problems = list(_problems(self, head_dim_given))
        if problems:
            raise ConfigError("invalid MiniMindConfig:\n  - " + "\n  - ".join(problems))

    @property
    def num_query_groups(self) -> int:
        """How many query heads share one key/value head (1 = MHA)."""
        return self.num_attention_heads // self.num_key_value_heads

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.update(data.pop("extra"))
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "MiniMindConfig":
        """Build from a dict such as an upstream `config.json`; unknown keys go to `extra`."""
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        data = dict(data)
        data.pop("_target_", None)
        # Upstream MiniMind2 spelled two MoE fields differently.
        for old, new in (("n_routed_experts", "num_experts"), ("aux_loss_alpha", "router_aux_loss_coef")):
            if old in data and new not in data:
                data[new] = data.pop(old)
        kwargs = {k: v for k, v in data.items() if k in known}
        extra = {k: v for k, v in data.items() if k not in known}
        return cls(**kwargs, extra=extra)

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> "MiniMindConfig":
        """A named size from `conf/model/NAME.yaml` (tiny, small, base, moe, minimind3, minimind3_moe)."""
        from minimind.model.presets import preset_fields

        return cls.from_dict({**preset_fields(name), **overrides})


def _problems(cfg: MiniMindConfig, head_dim_given: bool):
    """Yield one sentence per impossible setting, each saying what to change."""
    for name in ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                 "vocab_size", "max_position_embeddings", "intermediate_size", "head_dim"):
        value = getattr(cfg, name)
        if not isinstance(value, int) or value < 1:
            yield f"{name}={value!r} must be a positive integer"
    if any(not isinstance(getattr(cfg, n), int) or getattr(cfg, n) < 1
           for n in ("hidden_size", "num_attention_heads", "num_key_value_heads", "head_dim")):
        return  # the checks below divide by these
    heads, kv_heads = cfg.num_attention_heads, cfg.num_key_value_heads
    if not head_dim_given and cfg.hidden_size % heads != 0:
        yield (f"hidden_size={cfg.hidden_size} is not divisible by num_attention_heads={heads}: "
               f"choose hidden_size as a multiple of {heads} (e.g. {heads * max(1, round(cfg.hidden_size / heads))}) "
               "or set head_dim explicitly")
    if heads % kv_heads != 0:
        divisors = [d for d in range(1, heads + 1) if heads % d == 0]
        yield (f"num_attention_heads={heads} is not divisible by num_key_value_heads={kv_heads}: "
               f"each key/value head must serve the same number of query heads; use one of {divisors}")
    if cfg.head_dim % 2 != 0:
        yield (f"head_dim={cfg.head_dim} is odd, but RoPE rotates pairs of dimensions: "
               "choose hidden_size / num_attention_heads (or head_dim) even")
    if cfg.attn_implementation not in ATTENTION_BACKENDS:
        yield f"attn_implementation={cfg.attn_implementation!r} is unknown: use one of {ATTENTION_BACKENDS}"
    if cfg.hidden_act != "silu":
        yield f"hidden_act={cfg.hidden_act!r} is not supported: MiniMind's SwiGLU uses 'silu'"
    if not 0.0 <= cfg.dropout < 1.0:
        yield f"dropout={cfg.dropout} must be in [0, 1)"
    if cfg.rms_norm_eps <= 0:
        yield f"rms_norm_eps={cfg.rms_norm_eps} must be > 0"
    if cfg.rope_theta <= 0:
        yield f"rope_theta={cfg.rope_theta} must be > 0"
    if cfg.rope_scaling is not None:
        kind = cfg.rope_scaling.get("type", cfg.rope_scaling.get("rope_type"))
        if kind != "yarn":
            yield f"rope_scaling type {kind!r} is not supported: use {{'type': 'yarn', 'factor': ...}} or null"
        elif cfg.rope_scaling.get("factor", 16) < 1:
            yield f"rope_scaling.factor={cfg.rope_scaling['factor']} must be >= 1"
    if cfg.use_moe:
        if cfg.num_experts < 1:
            yield f"num_experts={cfg.num_experts} must be >= 1 with use_moe=true"
        elif not 1 <= cfg.num_experts_per_tok <= cfg.num_experts:
            yield (f"num_experts_per_tok={cfg.num_experts_per_tok} must be between 1 and "
                   f"num_experts={cfg.num_experts}: lower top-k or add experts")
        if cfg.n_shared_experts < 0:
            yield f"n_shared_experts={cfg.n_shared_experts} must be >= 0"
        if cfg.router_aux_loss_coef < 0:
            yield f"router_aux_loss_coef={cfg.router_aux_loss_coef} must be >= 0"
    for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
        token = getattr(cfg, name)
        if token is not None and not 0 <= token < cfg.vocab_size:
            yield f"{name}={token} is outside the vocabulary (vocab_size={cfg.vocab_size})"

