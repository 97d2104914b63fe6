"""Causal self-attention with grouped-query attention (GQA), RoPE and a KV cache.

Shapes: B batch, T new tokens, S = past + T keys, H query heads, K key/value heads, D head_dim.

GQA: K < H key/value heads, each shared by H/K query heads. K = H is classic multi-head
attention (MHA), K = 1 is multi-query attention (MQA). Fewer K/V heads shrink the k/v
projections and, above all, the KV cache that generation keeps per token.

Packed rows (several documents in one row, e.g. SFT conversations) pass `document_ids` (B, T):
a token attends only to earlier tokens of its own document, so attention is block-diagonal and
each document is computed exactly as if it were alone in its row.

Two interchangeable backends compute the same thing:
- "sdpa": torch's scaled_dot_product_attention, which picks fused (flash / memory-efficient)
  kernels on GPU and never materialises the T x S score matrix there;
- "eager": softmax(Q K^T / sqrt(D) + mask) V written out, slower, but it can return the
  attention weights for inspection.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from minimind.model.config import MiniMindConfig
from minimind.model.norm import RMSNorm
from minimind.model.rope import apply_rope

KVCache = tuple[torch.Tensor, torch.Tensor]  # (keys, values), each (B, K, S, D)


def repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    """(B, K, S, D) -> (B, K * n_rep, S, D): hand each key/value head to its group of query heads."""
    if n_rep == 1:
        return x
    b, k, s, d = x.shape
    return x[:, :, None].expand(b, k, n_rep, s, d).reshape(b, k * n_rep, s, d)


def attention_bias(padding_mask: torch.Tensor | None, q_len: int, k_len: int,
                   dtype: torch.dtype, device: torch.device,
                   document_ids: torch.Tensor | None = None) -> torch.Tensor:
    """Additive mask (B or 1, 1, T, S): 0 where a query may look, a large negative number elsewhere.

    Query t sits at absolute position (S - T + t) and may see keys up to that position (causal),
    never a padding key, and (with `document_ids`, (B, S) with T == S) only keys of its own
    document. A finite minimum instead of -inf keeps rows that see nothing (left padding)
    finite: they become a uniform average that no real token ever reads.
    """
    allowed = torch.ones(q_len, k_len, dtype=torch.bool, device=device).tril(diagonal=k_len - q_len)[None, None]
    if padding_mask is not None:
        allowed = allowed & padding_mask[:, None, None, :].bool()
    if document_ids is not None:
        allowed = allowed & (document_ids[:, None, :, None] == document_ids[:, None, None, :])
    bias = torch.zeros(allowed.shape, dtype=dtype, device=device)
    return bias.masked_fill(~allowed, torch.finfo(dtype).min)


class Attention(nn.Module):
    def __init__(self, config: MiniMindConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.num_kv_heads = config.num_key_value_heads
        self.head_dim = config.head_dim
        self.backend = config.attn_implementation
        self.dropout = config.dropout
        self.q_proj = nn.Linear(config.hidden_size, self.num_heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(config.hidden_size, self.num_kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(config.hidden_size, self.num_kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(self.num_heads * self.head_dim, config.hidden_size, bias=False)
        if config.qk_norm:  # minimind-3 / Qwen3: normalise each head's q and k before RoPE
            self.q_norm = RMSNorm(self.head_dim, eps=config.rms_norm_eps)
            self.k_norm = RMSNorm(self.head_dim, eps=config.rms_norm_eps)
        else:
            self.q_norm = self.k_norm = None
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor],
                padding_mask: torch.Tensor | None = None, past_kv: KVCache | None = None,
                use_cache: bool = False, output_attentions: bool = False,
                document_ids: torch.Tensor | None = None):
        """x (B, T, hidden) -> (output (B, T, hidden), new cache or None, weights (B, H, T, S) or None).
        document_ids (B, T): which document each token belongs to (packed rows; None: one per row)."""
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.num_heads, self.head_dim)
        k = self.k_proj(x).view(b, t, self.num_kv_heads, self.head_dim)
        v = self.v_proj(x).view(b, t, self.num_kv_heads, self.head_dim)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (B, heads, T, D)
        cos, sin = rope
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)

        if past_kv is not None:  # keys/values of earlier tokens never change: reuse them
            k = torch.cat([past_kv[0], k], dim=2)
            v = torch.cat([past_kv[1], v], dim=2)
        new_kv = (k, v) if use_cache else None

        if self.backend == "eager" or output_attentions:
            n_rep = self.num_heads // self.num_kv_heads
            out, weights = self._eager(q, repeat_kv(k, n_rep), repeat_kv(v, n_rep), padding_mask, document_ids)
        else:
            out, weights = self._sdpa(q, k, v, padding_mask, document_ids), None
        out = out.transpose(1, 2).reshape(b, t, self.num_heads * self.head_dim)
        return self.resid_dropout(self.o_proj(out)), new_kv, weights

    def _sdpa(self, q, k, v, padding_mask, document_ids):
        t, s = q.shape[2], k.shape[2]
        # enable_gqa: the kernel maps each query head to its key/value head itself, so the
        # K/V heads are never copied H/K times (what repeat_kv does for the eager backend).
        kwargs = dict(dropout_p=self.dropout if self.training else 0.0, enable_gqa=self.num_heads != self.num_kv_heads)
        plain = padding_mask is None and document_ids is None
        if plain and t == s:  # the fast path fused kernels are built for
            return F.scaled_dot_product_attention(q, k, v, is_causal=True, **kwargs)
        if plain and t == 1:  # one new token sees every cached key
            return F.scaled_dot_product_attention(q, k, v, **kwargs)
        bias = attention_bias(padding_mask, t, s, q.dtype, q.device, document_ids)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, **kwargs)

    def _eager(self, q, k, v, padding_mask, document_ids):
        t, s = q.shape[2], k.shape[2]
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim)  # (B, H, T, S)
        scores = scores + attention_bias(padding_mask, t, s, scores.dtype, scores.device, document_ids)
        weights = F.softmax(scores.float(), dim=-1).type_as(q)
        return self.attn_dropout(weights) @ v, weights
