"""The training DataLoader: a `StatefulDataLoader` that also knows which epoch it is in.

`StatefulDataLoader` saves each worker's dataset state (Lightning puts it in the checkpoint
and restores it on `fit(ckpt_path=...)`), but not the epoch, and a state taken at the very
end of an epoch would resume into an empty one. This loader keeps (epoch, batches yielded):
every `iter()` starts the next epoch, unless a loaded state is to be continued, and a state
whose epoch was complete continues with the next one. Workers are started per epoch
(`persistent_workers=False`) so each takes its epoch from the dataset in the main process.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

from torchdata.stateful_dataloader import StatefulDataLoader

from minimind.data.errors import DataError


class ResumableLoader(StatefulDataLoader):
    """Iterates a dataset that yields whole batches and has `set_epoch`, `state_dict`, `load_state_dict`.

    A dataset with a large state sets `snapshot_every_n_steps`: workers then send their state
    every n batches instead of every batch, and a resume replays at most n - 1 batches.
    """

    def __init__(self, dataset: Any, num_workers: int = 0, **kwargs: Any) -> None:
        kwargs.setdefault("snapshot_every_n_steps", getattr(dataset, "snapshot_every_n_steps", 1))
        with warnings.catch_warnings():  # torchdata 0.11 calls an API torch>=2.9 deprecates; not ours to fix
            warnings.filterwarnings("ignore", message=".*set_vital.*")
            super().__init__(dataset, batch_size=None, num_workers=num_workers, persistent_workers=False, **kwargs)
        self._epoch = -1  # the epoch being iterated, -1 before the first
        self._yielded = 0  # batches handed out in that epoch
        self._resume: dict[str, Any] | None = None

    def __iter__(self) -> Iterator[Any]:
        state, self._resume = self._resume, None
        if state is None:
            epoch, yielded = self._epoch + 1, 0
        else:
            epoch, yielded = state["epoch"], state["yielded"]
            if self._length is not None and yielded >= self._length:
                epoch, yielded, state = epoch + 1, 0, None  # it ended exactly there: go on with the next
        self._epoch, self._yielded = epoch, yielded
        self.dataset.set_epoch(epoch)
        super().load_state_dict(state["loader"] if state else {})  # {} only drops any old iterator
        return self._count(super().__iter__())

    @property
    def _length(self) -> int | None:
        try:
            return len(self.dataset)
        except TypeError:  # a stream without an end
            return None

    def _check(self, state: dict[str, Any]) -> None:
        """A position only means something for the data settings it was taken with."""
        now = {"num_workers": self.num_workers, "batches_per_epoch": self._length}
        then = {key: state.get(key) for key in now}
        if then != now:
            raise DataError(
                f"the checkpoint's data position was taken with {then}, this run has {now}: resume with the same "
                "data settings (data.batch_size, data.seq_len, data.num_workers, number of ranks; for a streamed corpus "
                "also the run's length: tokens / trainer.max_steps)"
            )

    def _count(self, batches: Iterator[Any]) -> Iterator[Any]:
        for batch in batches:
            self._yielded += 1
            yield batch

    def state_dict(self) -> dict[str, Any]:
        if self._resume is not None:
            return self._resume
        if self._epoch < 0:
            return {}
        return {"epoch": self._epoch, "yielded": self._yielded, "num_workers": self.num_workers,
                "batches_per_epoch": self._length, "loader": super().state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Continue from `state_dict` at the next `iter()` (an empty one: start afresh)."""
        if state_dict:
            self._check(state_dict)
        self._resume = state_dict or None
