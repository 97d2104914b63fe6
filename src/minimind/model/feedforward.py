"""SwiGLU feed-forward: down(silu(gate(x)) * up(x)).

A plain MLP is down(act(up(x))). SwiGLU adds a second projection that acts as a learned,
per-feature gate on the activation; with a width of about 8/3 * hidden it costs the same
FLOPs as a 4x plain MLP and trains measurably better (Shazeer, 2020).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FeedForward(nn.Module):
    def __init__(self, hidden_size: int, intermediate_size: int, dropout: float = 0.0):
        super().__init__()
        self.gate_proj = nn.Linear(hidden_size, intermediate_size, bias=False)
        self.up_proj = nn.Linear(hidden_size, intermediate_size, bias=False)
        self.down_proj = nn.Linear(intermediate_size, hidden_size, bias=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x)))
