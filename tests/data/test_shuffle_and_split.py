"""Seeded shuffling (new order each epoch, same order for the same seed) and a fixed validation split."""

from __future__ import annotations

from minimind.data.records import is_val
from minimind.data.streaming_dataset import StreamingDataset

from .helpers import datamodule, make_texts, rows_of, stream_of, write_pretrain


def corpus(tmp_path):
    return write_pretrain(tmp_path / "c.jsonl", make_texts(120))


def test_shuffle_is_determined_by_seed_and_epoch(tiny_tokenizer_dir, tmp_path):
    path = corpus(tmp_path)

    def epochs(seed):
        dm = datamodule(path, tiny_tokenizer_dir, tmp_path, seed=seed, batch_size=1)  # no row left out
        dm.setup("fit")
        loader = dm.train_dataloader()
        return rows_of(loader), rows_of(loader)

    first, second = epochs(seed=1)
    assert epochs(seed=1) == (first, second)  # same seed, same order
    assert sorted(first) == sorted(second) and first != second  # each epoch a new permutation
    assert epochs(seed=2)[0] != first


def test_streaming_shuffle_buffer_is_seeded(tiny_tokenizer, tiny_tokenizer_dir, tmp_path):
    dm = datamodule(corpus(tmp_path), tiny_tokenizer_dir, tmp_path, cache=False)

    def rows(seed, buffer):
        ds = StreamingDataset(dm.corpus, "pretrain", tiny_tokenizer, 16, 4, True, val_fraction=0.0, seed=seed,
                              shuffle_buffer=buffer)
        return [r for _, b in zip(range(20), ds) for r in rows_of([b])]

    assert rows(1, 32) == rows(1, 32) and rows(1, 32) != rows(2, 32)
    assert rows(1, 32) != rows(1, 0) and sorted(rows(1, 32))[:10] != rows(1, 0)[:10]


def test_validation_split_is_fixed_and_disjoint(tiny_tokenizer, tiny_tokenizer_dir, tmp_path):
    texts = make_texts(120)
    path = write_pretrain(tmp_path / "c.jsonl", texts)
    val_docs = [t for i, t in enumerate(texts) if is_val(f"c.jsonl:{i + 1}", 0.2)]
    assert 5 < len(val_docs) < 45

    def val_rows(seed, **kw):
        dm = datamodule(path, tiny_tokenizer_dir, tmp_path, seed=seed, val_fraction=0.2, **kw)
        dm.setup("fit")
        return rows_of(dm.val_dataloader())

    rows = val_rows(1)
    assert rows == val_rows(2) == val_rows(1)  # no shuffling, whatever the seed
    stream = stream_of(tiny_tokenizer, val_docs)  # exactly the held-out documents, in order
    assert [t for r in rows for t in r] == stream[: len(rows) * 16]
    assert len(val_rows(1, max_val_batches=2)) == 2 * 4
    assert rows == val_rows(1, cache=False)  # the streamed split is the same documents
