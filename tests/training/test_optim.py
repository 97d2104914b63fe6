"""Weight decay on matrices only; the schedules have the shapes they promise."""

import math

import pytest
import torch

from minimind.model import MiniMindConfig, MiniMindForCausalLM
from minimind.training.optim import constant, param_groups, upstream_cosine, warmup_cosine


def test_weight_decay_applies_to_matrices_only():
    model = MiniMindForCausalLM(MiniMindConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                               num_key_value_heads=1, vocab_size=64))
    decay, no_decay = param_groups(model, 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.ndim == 2 for p in decay["params"]) and all(p.ndim == 1 for p in no_decay["params"])
    norms = [p for n, p in model.named_parameters() if "norm" in n]
    assert {id(p) for p in norms} == {id(p) for p in no_decay["params"]}
    total = sum(p.numel() for g in (decay, no_decay) for p in g["params"])
    assert total == model.num_parameters()  # the tied embedding is in exactly one group


def lrs(schedule, total=100, **kwargs):
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = schedule(optimizer, total_steps=total, **kwargs)
    values = []
    for _ in range(total):
        values.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return values


def test_warmup_then_cosine_to_min_ratio():
    values = lrs(warmup_cosine, warmup_steps=0.1, min_lr_ratio=0.1)
    assert values[0] == pytest.approx(0.1) and values[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(values[9:], values[10:]))
    assert values[-1] == pytest.approx(0.1, abs=1e-3)


def test_upstream_schedule_matches_minimind_formula():
    values = lrs(upstream_cosine, total=50)
    for step in (0, 10, 49):
        assert values[step] == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi * step / 50)))


def test_warmup_in_steps_and_constant():
    values = lrs(warmup_cosine, warmup_steps=4, min_lr_ratio=0.0)
    assert values[:5] == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0])
    assert lrs(constant, total=10) == [1.0] * 10
