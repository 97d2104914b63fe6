"""Helpers shared by the tools tests (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import torch

from minimind.model import MiniMindConfig, MiniMindForCausalLM
from commands import run_module
from compose_train import TRAIN_OVERRIDES, VOCAB  # noqa: F401  (the tools tests import them from here)



def tiny_config(**overrides) -> MiniMindConfig:
    """2 layers of width 64, GQA 4q/2kv, the test tokenizer's vocabulary."""
    fields = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                  intermediate_size=128, vocab_size=VOCAB, max_position_embeddings=256)
    return MiniMindConfig(**{**fields, **overrides})


def tiny_model(seed: int = 0, **overrides) -> MiniMindForCausalLM:
    """A random tiny model whose norms are not all 1, so that norms really take part in comparisons."""
    torch.manual_seed(seed)
    model = MiniMindForCausalLM(tiny_config(**overrides)).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5)
    return model


def run_tool(module: str, *args: str, stdin: str | None = None, cwd: Path | None = None,
             timeout: int = 120, check: bool = True) -> subprocess.CompletedProcess:
    """`python -m minimind.<module> key=value ...` as a user runs it; with `check`, a failure fails the test."""
    return run_module(f"minimind.{module}", *args, stdin=stdin, cwd=cwd, timeout=timeout, check=check)
