"""RMSNorm: scale by the root mean square, no mean subtraction and no bias.

LayerNorm computes (x - mean) / std * g + b; RMSNorm drops the centring and the bias,
x / sqrt(mean(x^2) + eps) * g, which is cheaper and trains as well in practice.
The statistic is taken in float32 so bf16/fp16 activations do not lose precision.
"""

from __future__ import annotations

import torch
from torch import nn


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * normed.type_as(x)
