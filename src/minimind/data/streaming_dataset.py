"""Batches made while reading (`data.cache=false`, the default for `hf:` sources).

Each DataLoader worker reads its own share of the records (record index modulo the number
of (rank, worker) pairs; the others are skipped unparsed), tokenizes them, packs them into
rows and, for training, passes the rows through a seeded shuffle buffer. Training reads the
corpus over and over as one endless stream (each rank always has data, so ranks never wait
on each other; bound the run with `max_steps`); validation is one pass in corpus order,
optionally cut to `max_batches`.

The state (pass, next record, leftover tokens, shuffle buffer, rows not yet batched) is
saved through `StatefulDataLoader`, so a resumed stream continues where it stopped. One
limit: Lightning reads one batch ahead from a loader without a length, so the state it
checkpoints is one batch ahead and a resumed streamed run skips one batch. Cached data
(the default for local corpora) has a length and resumes exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset
from transformers import PreTrainedTokenizerFast

from minimind.data.corpus import Corpus
from minimind.data.encode import ChatOptions, Encoder
from minimind.data.errors import BadRecords, DataError
from minimind.data.packing import Packer, to_batch
from minimind.data.records import is_val
from minimind.data.sharding import check_rank, worker_slot
from minimind.data.shuffle import ShuffleBuffer

ENCODE_GROUP = 64  # documents per encode_batch call


class StreamingDataset(IterableDataset):
    snapshot_every_n_steps = 16  # the state holds the shuffle buffer: send it from workers now and then

    def __init__(
        self,
        corpus: Corpus,
        fmt: str,
        tokenizer: PreTrainedTokenizerFast,
        seq_len: int,
        batch_size: int,
        packing: bool,
        train: bool = True,
        val_fraction: float = 0.05,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
        shuffle_buffer: int = 256,
        max_batches: int | None = None,
        on_bad_record: str = "error",
        chat_options: ChatOptions = ChatOptions(),
    ) -> None:
        check_rank(rank, world_size)
        self.corpus, self.fmt, self.tokenizer = corpus, fmt, tokenizer
        self.seq_len, self.batch_size, self.packing, self.train = seq_len, batch_size, packing, train
        self.val_fraction, self.rank, self.world_size, self.seed = val_fraction, rank, world_size, seed
        self.shuffle_buffer = shuffle_buffer if train else 0
        self.max_batches, self.on_bad_record, self.chat_options = max_batches, on_bad_record, chat_options
        self._reset()

    def _reset(self) -> None:
        self.passes = self.cursor = self.pass_records = self.batches = 0
        self.packer = Packer(self.seq_len, self.packing, self.tokenizer.pad_token_id, documents=self.fmt == "sft")
        self.buffer = ShuffleBuffer(self.shuffle_buffer, self.seed)
        self.ready: list[np.ndarray] = []
        self.fresh = True  # the buffer is seeded per worker on the first iteration

    def __len__(self) -> int:
        """Batches per epoch when cut to `max_batches`; a bare stream has no length (TypeError, as
        `len()` protocols expect)."""
        if self.max_batches is None:
            raise TypeError("an uncut stream has no length")
        return self.max_batches

    def set_epoch(self, epoch: int) -> None:
        """Training is one endless stream and validation always starts over: nothing to do."""

    def _records(self, shard: int, shards: int, bad: BadRecords) -> Iterator[Any]:
        start, val = self.cursor, not self.train
        return self.corpus.records(
            self.fmt, bad,
            lambda i, doc_id: i >= start and i % shards == shard and is_val(doc_id, self.val_fraction) == val,
        )

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        worker, workers = worker_slot()
        shard, shards = self.rank * workers + worker, self.world_size * workers
        if not self.train:
            self._reset()
        if self.fresh:
            self.buffer, self.fresh = ShuffleBuffer(self.shuffle_buffer, [self.seed, shard]), False
        quota = None if self.max_batches is None else len(range(worker, self.max_batches, workers))
        encoder, bad = Encoder(self.tokenizer, self.fmt, self.chat_options), BadRecords(self.on_bad_record)
        records = self._records(shard, shards, bad)
        while True:
            while len(self.ready) >= self.batch_size:
                if quota is not None and self.batches >= quota:
                    return
                rows, self.ready = self.ready[: self.batch_size], self.ready[self.batch_size :]
                self.batches += 1
                yield self._batch(rows)
            group = list(islice(records, ENCODE_GROUP))
            if group:
                self._add(group, encoder)
            elif not self.train:  # one pass; a last, partial batch
                self.ready += self.packer.flush()  # packed SFT: the conversations waiting for a row
                if self.ready and (quota is None or self.batches < quota):
                    yield self._batch(self.ready)
                return
            elif self.pass_records == 0:
                raise DataError(
                    f"data.path={self.corpus.name!r}: a whole pass gave reader {shard} of {shards} (rank x worker) "
                    "no training document; add documents or use fewer ranks/workers"
                )
            else:
                self.passes, self.cursor, self.pass_records = self.passes + 1, 0, 0
                records = self._records(shard, shards, bad)

    def _add(self, group: list, encoder: Encoder) -> None:
        for ids, mask in encoder.encode(group):
            for row in self.packer.add(ids, mask):
                if (out := self.buffer.push(row)) is not None:
                    self.ready.append(out)
        self.cursor, self.pass_records = group[-1].index + 1, self.pass_records + len(group)

    @staticmethod
    def _batch(rows: list[np.ndarray]) -> dict[str, torch.Tensor]:
        return to_batch(np.stack(rows))

    def state_dict(self) -> dict[str, Any]:
        ready = torch.from_numpy(np.stack(self.ready)) if self.ready else torch.empty(0)
        counters = {"passes": self.passes, "cursor": self.cursor, "pass_records": self.pass_records}
        return {**counters, "batches": self.batches, "fresh": self.fresh, "ready": ready,
                "carry": torch.from_numpy(self.packer.carry), "buffer": self.buffer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.passes, self.cursor, self.pass_records = state["passes"], state["cursor"], state["pass_records"]
        self.batches, self.fresh = state["batches"], state["fresh"]
        self.ready = list(state["ready"].numpy())
        self.packer.carry = state["carry"].numpy().copy()
        self.buffer.load_state_dict(state["buffer"])
