"""Helpers shared by the tools tests (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

from minimind.model import MiniMindConfig, MiniMindForCausalLM
from minimind.paths import PROJECT_ROOT

VOCAB = 400  # the size of tests/conftest.py's tiny tokenizer


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
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([sys.executable, "-m", f"minimind.{module}", *args], input=stdin, capture_output=True,
                          text=True, cwd=cwd or PROJECT_ROOT, env=env, timeout=timeout)
    assert not check or proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


TRAIN_OVERRIDES = [
    "model=tiny", "model.hidden_size=64", "model.num_hidden_layers=2", "model.num_attention_heads=4",
    "model.num_key_value_heads=2", "model.intermediate_size=128", f"model.vocab_size={VOCAB}",
    "model.max_position_embeddings=256", "trainer=cpu", "precision=fp32", "logger=csv", "tokens=null",
    "trainer.max_steps=12", "trainer.val_check_interval=6", "trainer.limit_val_batches=3",
    "trainer.enable_progress_bar=false", "trainer.log_every_n_steps=1", "callbacks.samples=null",
    "callbacks.throughput=null", "data.seq_len=32", "data.batch_size=4", "data.num_workers=0",
    "optimizer.lr=3e-3", "scheduler=constant",
]
