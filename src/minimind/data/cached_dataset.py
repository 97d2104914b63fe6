"""Batches from the token cache: exact epochs, equal for every rank, resumable.

An epoch is a seeded permutation of all rows (packed windows or documents). Rank r takes
rows r, r + world_size, ... of it, the same number on every rank, and cuts them into
batches: `len(dataset)` batches per rank, known before training, so DDP never waits for a
rank that has run out, and Lightning knows the epoch length (and does not prefetch past it).

The state (`epoch`, batches this worker has yielded) is two integers per worker; it is
saved through `StatefulDataLoader`, and `ResumableLoader` sets the epoch of each pass.
Validation (`train=False`) keeps the corpus order, keeps a last partial batch, and restarts
from its beginning on every pass.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import IterableDataset

from minimind.data.errors import DataError
from minimind.data.packing import DocRows, PackedRows
from minimind.data.sharding import check_rank, worker_slot


class CachedDataset(IterableDataset):
    def __init__(
        self,
        rows: PackedRows | DocRows,
        batch_size: int,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
        train: bool = True,
        max_batches: int | None = None,
        name: str = "train",
    ) -> None:
        check_rank(rank, world_size)
        self.rows, self.batch_size, self.rank, self.world_size = rows, batch_size, rank, world_size
        self.seed, self.train = seed, train
        self.per_rank = rows.count // world_size
        batches = self.per_rank // batch_size if train else math.ceil(self.per_rank / batch_size)
        self.num_batches = min(batches, max_batches) if max_batches is not None else batches
        if self.num_batches == 0:
            raise DataError(
                f"the {name} split has {rows.count} rows of seq_len={rows.seq_len}: too few for one batch of "
                f"{batch_size} on each of {world_size} ranks; lower data.batch_size or data.seq_len, or add data"
            )
        self.epoch, self.done = 0, 0

    def __len__(self) -> int:
        return self.num_batches

    def set_epoch(self, epoch: int) -> None:
        """Start pass `epoch` from its beginning (called by `ResumableLoader`)."""
        self.epoch, self.done = epoch, 0

    def order(self) -> np.ndarray:
        """All row ids in this epoch's order."""
        if not self.train:
            return np.arange(self.rows.count)
        return np.random.default_rng([self.seed, self.epoch]).permutation(self.rows.count)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        worker, workers = worker_slot()
        if not self.train:
            self.done = 0
        mine = self.order()[self.rank :: self.world_size][: self.per_rank]
        for j in range(worker + workers * self.done, self.num_batches, workers):
            self.done += 1  # counted before the yield: the state then says "this batch is out"
            yield self.rows.batch(mine[j * self.batch_size : (j + 1) * self.batch_size])

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "done": self.done}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.done = state["epoch"], state["done"]
