"""Where a model's parameters are, computed from its config alone (no weights needed).

Used by the comparison report (the inspection tool counts the loaded tensors themselves,
and its tests check the two agree): at MiniMind's sizes the 6400-token embedding is a large
share, and GQA trims the k/v projections and, more importantly for generation, the KV cache.
"""

from __future__ import annotations

from minimind.model.config import MiniMindConfig


def parameter_breakdown(cfg: MiniMindConfig) -> dict[str, int]:
    """Parameter counts by component; `total` counts a tied embedding once."""
    d, hd, layers = cfg.hidden_size, cfg.head_dim, cfg.num_hidden_layers
    q_o = 2 * d * cfg.num_attention_heads * hd
    k_v = 2 * d * cfg.num_key_value_heads * hd
    if cfg.use_moe:
        experts = cfg.num_experts + cfg.n_shared_experts
        mlp = experts * 3 * d * cfg.moe_intermediate_size + d * cfg.num_experts  # + router
    else:
        mlp = 3 * d * cfg.intermediate_size
    norms = layers * (2 * d + (2 * hd if cfg.qk_norm else 0)) + d
    parts = {
        "embedding": cfg.vocab_size * d,
        "attention_qo": layers * q_o,
        "attention_kv": layers * k_v,
        "mlp": layers * mlp,
        "norms": norms,
        "lm_head": 0 if cfg.tie_word_embeddings else cfg.vocab_size * d,
    }
    parts["attention"] = parts["attention_qo"] + parts["attention_kv"]
    parts["total"] = sum(parts[k] for k in ("embedding", "attention", "mlp", "norms", "lm_head"))
    return parts


def kv_cache_bytes_per_token(cfg: MiniMindConfig, bytes_per_element: int = 2) -> int:
    """Memory the KV cache grows by per generated token: keys and values of every layer."""
    return 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * cfg.head_dim * bytes_per_element
