"""Exact resume at the loader level: take the state after N batches, a fresh loader continues."""

from __future__ import annotations

import pytest
import torch

from minimind.data import DataError
from minimind.data.loader import ResumableLoader
from minimind.data.streaming_dataset import StreamingDataset

from .helpers import datamodule, make_texts, write_pretrain


def same(a, b) -> bool:
    return len(a) == len(b) and all(torch.equal(x["input_ids"], y["input_ids"]) for x, y in zip(a, b))


class Draw:
    """Draws batches as a training loop does: one iterator per epoch, a new one when it ends."""

    def __init__(self, loader):
        self.loader, self.it, self.fresh, self.empty_epochs = loader, iter(loader), True, 0

    def __call__(self, n: int) -> list:
        out = []
        while len(out) < n:
            try:
                out.append(next(self.it))
                self.fresh = False
            except StopIteration:
                self.empty_epochs += self.fresh
                self.it, self.fresh = iter(self.loader), True
        return out


@pytest.fixture
def cached(tiny_tokenizer_dir, tmp_path):
    dm = datamodule(write_pretrain(tmp_path / "c.jsonl", make_texts(60)), tiny_tokenizer_dir, tmp_path, seed=7)
    dm.setup("fit")
    return dm


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("n", [5, "epoch"])  # mid-epoch, and exactly at the end of an epoch
def test_cached_loader_resumes_with_the_next_unseen_batch(cached, workers, n):
    cached.hparams.num_workers = workers
    loader = cached.train_dataloader()
    n = len(loader) if n == "epoch" else n
    m = len(loader) + 3  # continue into the next epoch
    reference = Draw(cached.train_dataloader())(n + m)
    draw = Draw(loader)
    assert same(draw(n), reference[:n])
    state = loader.state_dict()
    assert same(draw(m), reference[n:])
    resumed = cached.train_dataloader()
    resumed.load_state_dict(state)
    draw = Draw(resumed)
    assert same(draw(m), reference[n:])
    assert draw.empty_epochs == 0  # a state taken at an epoch's end goes on with the next epoch


@pytest.mark.parametrize("workers", [0, 2])
def test_streamed_loader_resumes_with_the_next_unseen_batch(tiny_tokenizer, tiny_tokenizer_dir, tmp_path, workers):
    dm = datamodule(write_pretrain(tmp_path / "c.jsonl", make_texts(30)), tiny_tokenizer_dir, tmp_path, cache=False)

    def loader():
        ds = StreamingDataset(dm.corpus, "pretrain", tiny_tokenizer, 16, 4, True, val_fraction=0.0, seed=3,
                              shuffle_buffer=8)
        return ResumableLoader(ds, num_workers=workers)

    n, m = 7, 30  # several passes over the corpus
    reference = Draw(loader())(n + m)
    first = loader()
    assert same(Draw(first)(n), reference[:n])
    state = first.state_dict()
    resumed = loader()
    resumed.load_state_dict(state)
    assert same(Draw(resumed)(m), reference[n:])


def test_a_position_from_other_data_settings_is_refused(cached):
    loader = cached.train_dataloader()
    next(iter(loader))
    state = loader.state_dict()
    cached.hparams.batch_size = 2
    with pytest.raises(DataError, match="data position was taken with .*'batches_per_epoch': 36}, this run has .*'batches_per_epoch': 73}: resume with the same"):
        cached.train_dataloader().load_state_dict(state)
