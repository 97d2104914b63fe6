"""`MiniMindDataModule` as the training code uses it, on the default corpus and tokenizer."""

from __future__ import annotations

import pytest
import torch

from minimind.data import DataError, MiniMindDataModule, default_tokenizer_dir
from minimind.paths import cache_dir

from .helpers import datamodule, make_texts, write_pretrain


@pytest.mark.slow  # trains the real 6400-token default tokenizer: about 8 s on 2 idle cores
def test_default_corpus_and_tokenizer_end_to_end():
    dm = MiniMindDataModule(seq_len=64, batch_size=8, max_val_batches=3)  # all defaults: no files, no network
    dm.prepare_data()  # trains the default tokenizer and builds the token cache, once
    dm.setup("fit")
    assert default_tokenizer_dir().parent == cache_dir() / "tokenizers"
    assert dm.vocab_size == 6400 and len(dm.tokenizer) == 6400 and dm.tokenizer.pad_token_id == 0
    assert dm.token_bytes.shape == (6400,) and dm.token_bytes.dtype == torch.long and dm.token_bytes[0] == 0
    assert dm.num_train_tokens() > 500_000
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == {"input_ids", "labels"} and batch["input_ids"].shape == (8, 64)
    assert batch["input_ids"].dtype == torch.long and torch.equal(batch["labels"], batch["input_ids"])
    assert len(dm.val_dataloader()) == 3
    assert dm.bad_record_report()["skipped"] == 0
    again = MiniMindDataModule(seq_len=32)
    assert again._open_cache().path == dm._open_cache().path  # tokenizer and cache are reused, not rebuilt


def test_validation_can_be_switched_off(tiny_tokenizer_dir, tmp_path):
    dm = datamodule(write_pretrain(tmp_path / "c.jsonl", make_texts(30)), tiny_tokenizer_dir, tmp_path)
    dm.setup("fit")
    assert dm.val_dataloader() == []


def test_too_little_data_is_an_error_at_setup(tiny_tokenizer_dir, tmp_path):
    path = write_pretrain(tmp_path / "c.jsonl", make_texts(30))
    with pytest.raises(DataError, match="too few for one batch of 1000"):
        datamodule(path, tiny_tokenizer_dir, tmp_path, batch_size=1000).setup("fit")
    with pytest.raises(DataError, match="the val split has no documents; raise data.val_fraction"):
        datamodule(path, tiny_tokenizer_dir, tmp_path, val_fraction=0.001).setup("fit")


@pytest.mark.parametrize(("arg", "value", "message"), [
    ("seq_len", 1, "data.seq_len=1 must be an integer >= 2"),
    ("format", "chat", "data.format='chat' must be one of"),
    ("on_bad_record", "ignore", "data.on_bad_record='ignore' must be one of"),
    ("val_fraction", 1.0, "data.val_fraction=1.0 must be in"),
])
def test_bad_arguments_say_what_to_change(arg, value, message):
    with pytest.raises(DataError, match=message):
        MiniMindDataModule(**{arg: value})
