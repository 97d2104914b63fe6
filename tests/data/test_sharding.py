"""2 ranks x 2 real worker processes: disjoint shares, the whole corpus, equal batches per rank."""

from __future__ import annotations

from collections import Counter
from itertools import islice

import numpy as np

from minimind.data.cached_dataset import CachedDataset
from minimind.data.loader import ResumableLoader
from minimind.data.packing import PackedRows
from minimind.data.streaming_dataset import StreamingDataset

from .helpers import datamodule, make_texts, rows_of, stream_of, write_pretrain

WORLD, WORKERS, B, T = 2, 2, 3, 16


def test_cached_epoch_is_split_disjointly_and_evenly(tiny_tokenizer_dir, tmp_path):
    dm = datamodule(write_pretrain(tmp_path / "c.jsonl", make_texts(150)), tiny_tokenizer_dir, tmp_path)
    split = dm._open_cache().split("train")
    rows = PackedRows(split.tokens, None, T)
    all_rows = Counter(rows_of([rows.batch(np.arange(rows.count))]))
    per_rank = []
    for rank in range(WORLD):
        loader = ResumableLoader(CachedDataset(rows, B, rank=rank, world_size=WORLD, seed=3), num_workers=WORKERS)
        batches = list(loader)
        assert len(batches) == len(loader) == rows.count // WORLD // B  # known up front, same on every rank
        per_rank.append(rows_of(batches))
    seen = Counter(per_rank[0] + per_rank[1])
    assert max(seen.values()) == 1 and set(seen) <= set(all_rows)  # nothing read twice
    assert sum(all_rows.values()) - sum(seen.values()) == rows.count % (WORLD * B)  # only the remainder waits


def test_streamed_records_are_split_disjointly(tiny_tokenizer, tiny_tokenizer_dir, tmp_path):
    texts = make_texts(41)
    dm = datamodule(write_pretrain(tmp_path / "c.jsonl", texts), tiny_tokenizer_dir, tmp_path, cache=False)
    seen = []
    for rank in range(WORLD):  # one pass, one padded document per row: each row names its document
        ds = StreamingDataset(dm.corpus, "pretrain", tiny_tokenizer, 64, 1, packing=False, train=False,
                              val_fraction=1.0, rank=rank, world_size=WORLD)
        seen += [tuple(t for t in row if t != 0) for row in rows_of(ResumableLoader(ds, num_workers=WORKERS))]
    expected = [tuple(t for t in stream_of(tiny_tokenizer, [text]) if t != 0) for text in texts]
    assert sorted(seen) == sorted(expected)  # the whole corpus, each document once


def test_streamed_training_never_runs_dry(tiny_tokenizer, tiny_tokenizer_dir, tmp_path):
    dm = datamodule(write_pretrain(tmp_path / "c.jsonl", make_texts(9)), tiny_tokenizer_dir, tmp_path, cache=False)
    for rank in range(WORLD):  # a tiny corpus: every rank keeps getting batches, pass after pass
        ds = StreamingDataset(dm.corpus, "pretrain", tiny_tokenizer, T, B, True, val_fraction=0.0, rank=rank,
                              world_size=WORLD, shuffle_buffer=4)
        batches = list(islice(ResumableLoader(ds, num_workers=WORKERS), 40))
        assert len(batches) == 40
