"""Throughput and MFU are measured without synchronising the device in the per-step path."""

import lightning as L
import pytest
import torch

from minimind.model import MiniMindConfig
from minimind.training.callbacks import RunStatsCallback
from minimind.training.module import MiniMindModule

# Each forces the host to wait for the device (or would, on a GPU).
SYNCHRONISING = [(torch.cuda, "synchronize"), (torch.cpu, "synchronize"), (torch.Tensor, "item"),
                 (torch.Tensor, "cpu"), (torch.Tensor, "tolist"), (torch.Tensor, "__float__"),
                 (torch.Tensor, "__bool__")] + ([(torch.accelerator, "synchronize")] if hasattr(torch, "accelerator") else [])


def test_no_synchronisation_in_the_per_step_throughput_path(monkeypatch):
    inside, calls = [False], []

    for owner, name in SYNCHRONISING:
        original = getattr(owner, name)

        def counted(*args, _original=original, _name=name, **kwargs):
            if inside[0]:
                calls.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(owner, name, counted)

    class Watched(RunStatsCallback):
        def on_train_batch_end(self, *args, **kwargs):
            inside[0] = True
            try:
                super().on_train_batch_end(*args, **kwargs)
            finally:
                inside[0] = False

    config = MiniMindConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                            vocab_size=64, max_position_embeddings=64)
    ids = torch.randint(0, 64, (4, 16), generator=torch.Generator().manual_seed(0))
    stats = Watched(warmup_steps=2)
    trainer = L.Trainer(max_steps=12, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[stats], accelerator="cpu", log_every_n_steps=1)
    loader = torch.utils.data.DataLoader([{"input_ids": ids, "labels": ids}] * 12, batch_size=None)
    trainer.fit(MiniMindModule(config), train_dataloaders=loader)

    assert calls == []
    assert trainer.callback_metrics["perf/tokens_per_sec"] > 0
    assert 0 < stats.mfu() < 1  # against this machine's measured peak
    assert stats.tokens_per_sec() == pytest.approx(stats.steady_tokens / stats.steady_seconds)
