"""Parameter groups and learning-rate schedules.

Weight decay pulls weights towards zero; that regularises matrices, but on gains (RMSNorm
weights) it only fights the scale the norm is meant to learn. So, as nanoGPT and most LLM
recipes do, decay applies to matrices (>= 2 dims: projections, embeddings) and nothing else.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Callable

import torch
from torch.optim.lr_scheduler import LambdaLR


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    params = {id(p): p for p in model.parameters() if p.requires_grad}.values()  # tied weights once
    return [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]


def warmup_cosine(step: int, total_steps: int, warmup_steps: int, min_lr_ratio: float) -> float:
    """Linear warm-up to the peak, then a cosine down to min_lr_ratio * peak at total_steps."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def upstream_minimind(step: int, total_steps: int) -> float:
    """Upstream MiniMind's schedule: no warm-up, cosine from 1.0 to 0.1 of the peak."""
    return 0.1 + 0.45 * (1 + math.cos(math.pi * min(step, total_steps) / max(1, total_steps)))


def build_scheduler(optimizer: torch.optim.Optimizer, total_steps: int, name: str = "cosine",
                    warmup_steps: int | float = 0, min_lr_ratio: float = 0.1) -> LambdaLR:
    """name: "cosine" (warm-up + cosine), "upstream" (MiniMind's) or "constant".
    warmup_steps below 1 is a fraction of total_steps."""
    if isinstance(warmup_steps, float) and warmup_steps < 1:
        warmup_steps = int(warmup_steps * total_steps)
    schedules: dict[str, Callable[[int], float]] = {
        "cosine": partial(warmup_cosine, total_steps=total_steps, warmup_steps=int(warmup_steps),
                          min_lr_ratio=min_lr_ratio),
        "upstream": partial(upstream_minimind, total_steps=total_steps),
        "constant": lambda step: 1.0,
    }
    if name not in schedules:
        raise ValueError(f"unknown schedule {name!r}: use one of {sorted(schedules)}")
    return LambdaLR(optimizer, schedules[name])
