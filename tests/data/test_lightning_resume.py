"""Exact resume through a real `lightning.Trainer`: stop at step k, resume from the checkpoint,
and the batches seen equal those of an uninterrupted run."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint

from .helpers import datamodule, make_texts, write_pretrain

TOTAL = 14  # steps; an epoch is 9 batches here, so the runs cross an epoch end


class Recorder(LightningModule):
    """Records every batch it trains on; optionally asks for `estimated_stepping_batches`
    in `configure_optimizers`, as LR schedules do (Lightning#20550 then drops loader state)."""

    def __init__(self, ask_steps: bool = False):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.ask_steps, self.seen = ask_steps, []

    def training_step(self, batch, batch_idx):
        self.seen.append(batch["input_ids"].clone())
        return self.weight.sum() * batch["input_ids"].float().mean()

    def configure_optimizers(self):
        if self.ask_steps:
            assert self.trainer.estimated_stepping_batches == TOTAL
        return torch.optim.SGD(self.parameters(), lr=0.0)


class StopAt(Callback):
    """Ends the run after `step` steps, as an interruption would, with the run's own max_steps."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step >= self.step:
            trainer.should_stop = True


def fit(data, max_steps, root, ckpt_path=None, ask_steps=False, every=None, stop_at=None):
    model = Recorder(ask_steps)
    callbacks = [ModelCheckpoint(dirpath=root, every_n_train_steps=every, save_top_k=-1)] if every else []
    callbacks += [StopAt(stop_at)] if stop_at else []
    trainer = Trainer(max_steps=max_steps, max_epochs=100, accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                      enable_model_summary=False, num_sanity_val_steps=0, callbacks=callbacks, default_root_dir=root,
                      enable_checkpointing=bool(every))
    trainer.fit(model, datamodule=data, ckpt_path=ckpt_path)
    return torch.stack(model.seen), trainer.current_epoch


@pytest.mark.parametrize(("stop", "ask_steps", "workers"), [(4, False, 0), (4, True, 2), (9, False, 0)])
def test_resumed_fit_sees_exactly_the_uninterrupted_batches(tiny_tokenizer_dir, tmp_path, stop, ask_steps, workers):
    path = write_pretrain(tmp_path / "c.jsonl", make_texts(60))

    def data():
        return datamodule(path, tiny_tokenizer_dir, tmp_path, seed=5, batch_size=16, num_workers=workers)

    assert len(data().train_dataloader()) == 9
    reference, epoch = fit(data(), TOTAL, tmp_path / "ref")
    first, _ = fit(data(), stop, tmp_path / "run", every=stop)
    [ckpt] = (tmp_path / "run").glob(f"*step={stop}.ckpt")
    rest, resumed_epoch = fit(data(), TOTAL, tmp_path / "resumed", ckpt_path=ckpt, ask_steps=ask_steps)
    assert torch.equal(torch.cat([first, rest]), reference)
    assert resumed_epoch == epoch  # no empty epoch on the way


@pytest.mark.parametrize("workers", [0, 2])
def test_resumed_fit_of_a_streamed_corpus_sees_exactly_the_uninterrupted_batches(tiny_tokenizer_dir, tmp_path, workers):
    """A streamed corpus (`data.cache=false`) has no natural epoch; its epoch is the run's batches,
    so Lightning knows the length and does not read a batch ahead of the checkpoint."""
    path = write_pretrain(tmp_path / "c.jsonl", make_texts(60))

    def data():
        return datamodule(path, tiny_tokenizer_dir, tmp_path, seed=5, batch_size=16, num_workers=workers, cache=False)

    reference, _ = fit(data(), TOTAL, tmp_path / "ref")
    first, _ = fit(data(), TOTAL, tmp_path / "run", every=5, stop_at=5)
    [ckpt] = (tmp_path / "run").glob("*step=5.ckpt")
    rest, _ = fit(data(), TOTAL, tmp_path / "resumed", ckpt_path=ckpt)
    assert len(reference) == TOTAL
    assert torch.equal(torch.cat([first, rest]), reference)
