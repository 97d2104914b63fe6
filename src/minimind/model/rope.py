"""Rotary position embedding (RoPE), with optional YaRN frequency scaling.

RoPE encodes position by rotating each pair of q/k dimensions by an angle that grows with
the position, at a different frequency per pair: theta_i = base^(-2i/d). The dot product of
a rotated query at position m and a rotated key at position n then depends only on m - n,
so attention sees relative positions without any learned position table.

The pairs are (x[i], x[i + d/2]) ("rotate half", the Llama/Qwen layout), which is what
upstream MiniMind and Hugging Face use, so weights move between them unchanged.
"""

from __future__ import annotations

import math
from typing import Any

import torch


def rope_frequencies(head_dim: int, theta: float, max_positions: int,
                     scaling: dict[str, Any] | None = None) -> tuple[torch.Tensor, float]:
    """Per-pair angular frequencies (head_dim/2,) and the attention scale YaRN asks for.

    YaRN (extrapolation past the training length): pairs that rotate quickly (short
    wavelengths, fine position detail) are kept; slow pairs are slowed down by `factor`;
    a linear ramp blends the two between `beta_fast` and `beta_slow` rotations.
    It only applies when `max_positions` exceeds the original training length.
    """
    freqs = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    attention_factor = 1.0
    if scaling is not None:
        original = scaling.get("original_max_position_embeddings", 2048)
        factor = scaling.get("factor", 16)
        beta_fast, beta_slow = scaling.get("beta_fast", 32.0), scaling.get("beta_slow", 1.0)
        attention_factor = scaling.get("attention_factor", 1.0)
        if max_positions > original:
            def pair_index(rotations: float) -> float:  # which pair turns `rotations` times over `original`
                return head_dim * math.log(original / (rotations * 2 * math.pi)) / (2 * math.log(theta))

            low = max(math.floor(pair_index(beta_fast)), 0)
            high = min(math.ceil(pair_index(beta_slow)), head_dim // 2 - 1)
            ramp = ((torch.arange(head_dim // 2, dtype=torch.float32) - low) / max(high - low, 1e-3)).clamp(0, 1)
            freqs = freqs * (1 - ramp + ramp / factor)
    return freqs, attention_factor


def precompute_rope(head_dim: int, theta: float, max_positions: int,
                    scaling: dict[str, Any] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables of shape (max_positions, head_dim), one row per position."""
    freqs, attention_factor = rope_frequencies(head_dim, theta, max_positions, scaling)
    angles = torch.outer(torch.arange(max_positions, dtype=torch.float32), freqs)  # (T, d/2)
    angles = torch.cat([angles, angles], dim=-1)  # the same angle for x[i] and x[i + d/2]
    return angles.cos() * attention_factor, angles.sin() * attention_factor


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """(x1, x2) -> (-x2, x1): the 90-degree turn of every (x[i], x[i + d/2]) pair."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate x (batch, heads, seq, head_dim) by cos/sin (batch, seq, head_dim)."""
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)  # broadcast over heads
    return (x * cos + rotate_half(x) * sin).to(x.dtype)
