"""Token streams -> training rows of `seq_len`: `input_ids` and `labels`.

The model shifts labels itself (as Hugging Face models do), so a row's `labels` are its
`input_ids`, with -100 wherever nothing is to be learnt: padding and, for SFT, everything
but the assistant's replies.

* packed (the default for pretraining): documents, each ending in `<|endoftext|>`, are
  concatenated and cut into rows of exactly `seq_len` tokens, so no position is padding;
  only the final remainder shorter than a row is left out;
* unpacked (`packing=false`, upstream MiniMind's way, and the default for SFT): one
  document per row, truncated to `seq_len` or padded with `<|endoftext|>` (label -100).
"""

from __future__ import annotations

import numpy as np
import torch

IGNORE = -100


def labels_for(ids: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """int64 labels: the ids, -100 where the mask (if any) is 0."""
    labels = ids.astype(np.int64)
    return labels if mask is None else np.where(mask, labels, IGNORE)


def to_batch(ids: np.ndarray, labels: np.ndarray) -> dict[str, torch.Tensor]:
    """(B, T) arrays -> the batch dict the model takes."""
    return {"input_ids": torch.from_numpy(ids.astype(np.int64)), "labels": torch.from_numpy(labels.astype(np.int64))}


def pad_row(ids: np.ndarray, labels: np.ndarray, seq_len: int, pad_id: int) -> np.ndarray:
    """One document as a (2, seq_len) int32 row: truncated, or padded with ignored pad tokens."""
    row = np.empty((2, seq_len), dtype=np.int32)
    n = min(len(ids), seq_len)
    row[0, :n], row[0, n:] = ids[:n], pad_id
    row[1, :n], row[1, n:] = labels[:n], IGNORE
    return row


class Packer:
    """Turns documents into rows as they stream in; what is left over waits for the next."""

    def __init__(self, seq_len: int, packing: bool, pad_id: int) -> None:
        self.seq_len, self.packing, self.pad_id = seq_len, packing, pad_id
        self.carry = np.empty((2, 0), dtype=np.int32)

    def add(self, ids: np.ndarray, mask: np.ndarray | None) -> list[np.ndarray]:
        """The (2, seq_len) int32 rows (ids, labels) completed by one more document."""
        labels = labels_for(ids, mask)
        if not self.packing:
            return [pad_row(ids, labels, self.seq_len, self.pad_id)]
        self.carry = np.concatenate([self.carry, np.stack([ids, labels]).astype(np.int32)], axis=1)
        n = self.carry.shape[1] // self.seq_len
        rows = [self.carry[:, i * self.seq_len : (i + 1) * self.seq_len] for i in range(n)]
        self.carry = self.carry[:, n * self.seq_len :].copy()
        return rows


class PackedRows:
    """Row i of a flat token array: tokens [i*T, (i+1)*T), read straight from the memmap."""

    def __init__(self, tokens: np.ndarray, mask: np.ndarray | None, seq_len: int) -> None:
        self.tokens, self.mask, self.seq_len = tokens, mask, seq_len
        self.count = len(tokens) // seq_len

    def batch(self, rows: np.ndarray) -> dict[str, torch.Tensor]:
        index = rows[:, None] * self.seq_len + np.arange(self.seq_len)
        ids = self.tokens[index]
        return to_batch(ids, labels_for(ids, None if self.mask is None else self.mask[index]))


class DocRows:
    """Row i is document i, truncated or padded (`packing=false`)."""

    def __init__(self, tokens: np.ndarray, mask: np.ndarray | None, offsets: np.ndarray, seq_len: int, pad_id: int):
        self.tokens, self.mask, self.offsets = tokens, mask, offsets
        self.seq_len, self.pad_id = seq_len, pad_id
        self.count = len(offsets) - 1

    def batch(self, rows: np.ndarray) -> dict[str, torch.Tensor]:
        out = []
        for i in rows:
            start, stop = self.offsets[i], min(self.offsets[i + 1], self.offsets[i] + self.seq_len)
            ids = self.tokens[start:stop]
            out.append(pad_row(ids, labels_for(ids, None if self.mask is None else self.mask[start:stop]), self.seq_len, self.pad_id))
        stacked = np.stack(out)
        return to_batch(stacked[:, 0], stacked[:, 1])
