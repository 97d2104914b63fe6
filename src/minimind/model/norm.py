"""RMSNorm: scale by the root mean square, no mean subtraction and no bias.

LayerNorm computes (x - mean) / std * g + b; RMSNorm drops the centring and the bias,
x / sqrt(mean(x^2) + eps) * g, which is cheaper and trains as well in practice.
The statistic is taken in float32 so bf16/fp16 activations do not lose precision.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x * rsqrt(mean(x^2) + eps) in float32, as one fused op; the gain in x's own dtype.
        normed = F.rms_norm(x.float(), (x.shape[-1],), eps=self.eps)
        return self.weight * normed.type_as(x)
