"""Parameter groups and learning-rate schedules.

Weight decay pulls weights towards zero; that regularises matrices, but on gains (RMSNorm
weights) it only fights the scale the norm is meant to learn. So, as nanoGPT and most LLM
recipes do, decay applies to matrices (>= 2 dims: projections, embeddings) and nothing else.
Which parameters those are is decided on the model as built (`decayed_names`): once FSDP
has wrapped it, every parameter is a 1-D view into a flat shard, and `ndim` says nothing.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from functools import partial

import torch
from torch.optim.lr_scheduler import LambdaLR


# Wrappers that insert themselves into parameter names: FSDP, activation checkpointing, torch.compile.
_WRAPPER_PREFIXES = ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.", "_orig_mod.")


def decayed_names(model: torch.nn.Module) -> frozenset[str]:
    """Names of the parameters that take weight decay: the matrices. Call it before wrapping."""
    return frozenset(unwrapped_name(n) for n, p in model.named_parameters() if p.ndim >= 2)


def unwrapped_name(name: str) -> str:
    """A parameter's name as in the plain model: wrapper prefixes removed."""
    for prefix in _WRAPPER_PREFIXES:
        name = name.replace(prefix, "")
    return name


def param_groups(model: torch.nn.Module, weight_decay: float, decayed: Collection[str] | None = None) -> list[dict]:
    """[matrices with `weight_decay`, the rest without]. `decayed`: the names chosen before the model
    was wrapped (`decayed_names`); None decides from the model as it is now (unwrapped)."""
    named = {}
    for name, p in model.named_parameters():  # tied weights once
        if p.requires_grad:
            named.setdefault(id(p), (unwrapped_name(name), p))
    if decayed is None:
        decayed = {name for name, p in named.values() if p.ndim >= 2}
    missing = set(decayed) - {unwrapped_name(n) for n, _ in model.named_parameters()}
    if missing:  # a wrapper renamed them: decay would silently turn off
        raise RuntimeError(f"weight decay was chosen for parameters the model no longer has: {sorted(missing)[:3]}")
    return [
        {"params": [p for name, p in named.values() if name in decayed], "weight_decay": weight_decay},
        {"params": [p for name, p in named.values() if name not in decayed], "weight_decay": 0.0},
    ]


def _warmup_steps(warmup_steps: int | float, total_steps: int) -> int:
    """Below 1, a fraction of the run; otherwise a number of steps."""
    return int(warmup_steps * total_steps) if isinstance(warmup_steps, float) and warmup_steps < 1 else int(warmup_steps)


def warmup_cosine_factor(step: int, total_steps: int, warmup_steps: int, min_lr_ratio: float) -> float:
    """Linear warm-up to the peak, then a cosine down to min_lr_ratio * peak at total_steps."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def upstream_factor(step: int, total_steps: int) -> float:
    """Upstream MiniMind's schedule: no warm-up, cosine from 1.0 to 0.1 of the peak."""
    return 0.1 + 0.45 * (1 + math.cos(math.pi * min(step, total_steps) / max(1, total_steps)))


# Each schedule is its own `_target_` (conf/scheduler/*.yaml), built as a partial and called by
# MiniMindModule.configure_optimizers with the optimizer and the run's total optimizer steps.

def warmup_cosine(optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int | float = 0,
                  min_lr_ratio: float = 0.1) -> LambdaLR:
    """Linear warm-up (`warmup_steps`: steps, or below 1 a fraction of the run), then cosine to `min_lr_ratio`."""
    return LambdaLR(optimizer, partial(warmup_cosine_factor, total_steps=total_steps,
                                       warmup_steps=_warmup_steps(warmup_steps, total_steps),
                                       min_lr_ratio=min_lr_ratio))


def upstream_cosine(optimizer: torch.optim.Optimizer, total_steps: int) -> LambdaLR:
    """Upstream MiniMind's schedule (its `get_lr`)."""
    return LambdaLR(optimizer, partial(upstream_factor, total_steps=total_steps))


def constant(optimizer: torch.optim.Optimizer, total_steps: int) -> LambdaLR:
    """The peak learning rate throughout."""
    return LambdaLR(optimizer, _one)


def _one(step: int) -> float:
    return 1.0
