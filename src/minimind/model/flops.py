"""Training FLOPs per token, for throughput and model-FLOPs utilisation (MFU).

PaLM's estimate (Chowdhery et al. 2022, appendix B), as nanoGPT uses it: every weight used
by a token costs 2 FLOPs forward and 4 backward (6N), and attention scores and their
weighted sum add 6 * 2 * layers * heads * head_dim * seq_len. For MoE only the experts a
token actually visits count (top-k plus shared), so MFU compares like with like.
"""

from __future__ import annotations

from minimind.model.config import MiniMindConfig


def active_matmul_params(cfg: MiniMindConfig) -> int:
    """Weights multiplied per token: attention, the visited MLP experts, router and LM head."""
    d, hd = cfg.hidden_size, cfg.head_dim
    attention = d * hd * (2 * cfg.num_attention_heads + 2 * cfg.num_key_value_heads)
    if cfg.use_moe:
        experts = cfg.num_experts_per_tok + cfg.n_shared_experts
        mlp = experts * 3 * d * cfg.moe_intermediate_size + d * cfg.num_experts
    else:
        mlp = 3 * d * cfg.intermediate_size
    return cfg.num_hidden_layers * (attention + mlp) + d * cfg.vocab_size


def training_flops_per_token(cfg: MiniMindConfig, seq_len: int) -> int:
    attention_scores = 12 * cfg.num_hidden_layers * cfg.num_attention_heads * cfg.head_dim * seq_len
    return 6 * active_matmul_params(cfg) + attention_scores
