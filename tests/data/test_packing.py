"""Rows of seq_len: packed with no padding and nothing lost, or one padded document per row."""

from __future__ import annotations

import torch

from minimind.data.cached_dataset import CachedDataset
from minimind.data.packing import PackedRows
from minimind.data.streaming_dataset import StreamingDataset

from .helpers import datamodule, make_texts, rows_of, stream_of, write_pretrain

T = 16


def test_packed_rows_conserve_every_token(tiny_tokenizer, tiny_tokenizer_dir, tmp_path):
    texts = make_texts(40)
    dm = datamodule(write_pretrain(tmp_path / "c.jsonl", texts), tiny_tokenizer_dir, tmp_path, batch_size=1)
    dm.setup("fit")
    stream = stream_of(tiny_tokenizer, texts)
    windows = [tuple(stream[i : i + T]) for i in range(0, len(stream) - T + 1, T)]
    batches = list(dm.train_dataloader())
    assert sorted(rows_of(batches)) == sorted(windows)  # every full window once: only the last partial one waits
    for b in batches:
        assert torch.equal(b["labels"], b["input_ids"])  # no padding, nothing masked
    split = dm._open_cache().split("train")
    in_order = CachedDataset(PackedRows(split.tokens, None, T), batch_size=3, train=False)
    assert [t for row in rows_of(in_order) for t in row] == stream[: len(windows) * T]
    assert stream[: len(windows) * T].count(0) > 10  # documents are separated by <|endoftext|>


def test_unpacked_rows_are_one_padded_or_truncated_document(tiny_tokenizer, tiny_tokenizer_dir, tmp_path):
    texts = make_texts(12, min_words=1, max_words=25)
    path = write_pretrain(tmp_path / "c.jsonl", texts)
    dm = datamodule(path, tiny_tokenizer_dir, tmp_path, packing=False, seq_len=24, batch_size=1)
    dm.setup("fit")
    docs = {tuple(stream_of(tiny_tokenizer, [t])) for t in texts}
    batches = list(dm.train_dataloader())
    assert len(batches) == len(texts)
    seen = set()
    for b in batches:
        ids, labels = b["input_ids"][0].tolist(), b["labels"][0].tolist()
        doc = next(d for d in docs if tuple(ids[: len(d)]) == d[:24])
        seen.add(doc)
        n = min(len(doc), 24)
        assert labels[:n] == ids[:n]
        assert ids[n:] == [0] * (24 - n) and labels[n:] == [-100] * (24 - n)
    assert seen == docs and any(len(d) > 24 for d in docs) and any(len(d) < 24 for d in docs)


def test_streaming_packer_matches_the_cache(tiny_tokenizer, tiny_tokenizer_dir, tmp_path):
    texts = make_texts(30)
    path = write_pretrain(tmp_path / "c.jsonl", texts)
    dm = datamodule(path, tiny_tokenizer_dir, tmp_path, cache=False)
    dm.setup("fit")
    ds = StreamingDataset(dm.corpus, "pretrain", tiny_tokenizer, T, 4, packing=True, val_fraction=0.0, shuffle_buffer=0)
    stream = stream_of(tiny_tokenizer, texts)
    n = len(stream) // T // 4 * 4
    rows = [row for _, batch in zip(range(n // 4), ds) for row in rows_of([batch])]
    assert [t for row in rows for t in row] == stream[: n * T]  # unshuffled: the stream itself
