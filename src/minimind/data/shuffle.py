"""A seeded shuffle buffer for streams that cannot be indexed (`data.shuffle_buffer` rows).

Rows enter a buffer of fixed size; once it is full, each new row replaces a random one,
which goes out. Its contents and generator state are part of the dataset state, so a
resumed stream continues exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


class ShuffleBuffer:
    def __init__(self, size: int, seed: int | list[int]) -> None:
        self.size = size
        self.rows: list[np.ndarray] = []
        self.rng = np.random.default_rng(seed)

    def push(self, row: np.ndarray) -> np.ndarray | None:
        """Add a row; the row that leaves in exchange, or None while the buffer fills."""
        if self.size == 0:
            return row
        if len(self.rows) < self.size:
            self.rows.append(row)
            return None
        i = int(self.rng.integers(self.size))
        out, self.rows[i] = self.rows[i], row
        return out

    def state_dict(self) -> dict[str, Any]:
        rows = torch.from_numpy(np.stack(self.rows)) if self.rows else torch.empty(0)
        return {"rows": rows, "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rows = list(state["rows"].numpy())
        self.rng.bit_generator.state = state["rng"]
