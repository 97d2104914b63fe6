"""Token streams -> training rows of `seq_len`: `input_ids` and `labels` (and `document_ids`).

The model shifts labels itself (as Hugging Face models do), so a row's `labels` are its
`input_ids`, with -100 wherever nothing is to be learnt: padding and, for SFT, everything
but the assistant's replies.

* packed pretraining (`packing=true`, the default for pretraining): documents, each ending in
  `<|endoftext|>`, are concatenated and cut into rows of exactly `seq_len` tokens, so no
  position is padding; only the final remainder shorter than a row is left out;
* unpacked (`packing=false`, upstream MiniMind's way, and the default for SFT): one
  document per row, truncated to `seq_len` or padded with `<|endoftext|>` (label -100);
* packed SFT (`packing=true` with `format=sft`): whole conversations (each truncated to
  `seq_len`) share rows, and the batch says which conversation each token belongs to
  (`document_ids`): the model then lets no conversation attend to another and restarts
  positions with each, so every conversation is trained exactly as if it had a row of its
  own, without the padding. The first token of each conversation is never a target (nothing
  before it in its own conversation predicts it).
"""

from __future__ import annotations

from bisect import bisect_right

import numpy as np
import torch

IGNORE = -100


def labels_for(ids: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """int64 labels: the ids, -100 where the mask (if any) is 0."""
    labels = ids.astype(np.int64)
    return labels if mask is None else np.where(mask, labels, IGNORE)


def to_batch(rows: np.ndarray) -> dict[str, torch.Tensor]:
    """(B, 2 or 3, T) rows of (ids, labels[, document ids]) -> the batch dict the model takes."""
    batch = {"input_ids": torch.from_numpy(rows[:, 0].astype(np.int64)),
             "labels": torch.from_numpy(rows[:, 1].astype(np.int64))}
    if rows.shape[1] == 3:
        batch["document_ids"] = torch.from_numpy(rows[:, 2].astype(np.int64))
    return batch


def pad_row(ids: np.ndarray, labels: np.ndarray, seq_len: int, pad_id: int) -> np.ndarray:
    """One document as a (2, seq_len) int32 row: truncated, or padded with ignored pad tokens."""
    row = np.empty((2, seq_len), dtype=np.int32)
    n = min(len(ids), seq_len)
    row[0, :n], row[0, n:] = ids[:n], pad_id
    row[1, :n], row[1, n:] = labels[:n], IGNORE
    return row


def document_row(docs: list[tuple[np.ndarray, np.ndarray]], seq_len: int, pad_id: int) -> np.ndarray:
    """Whole documents (ids, labels), at most `seq_len` tokens together, as one (3, seq_len) int32
    row of ids, labels and document ids (0, 1, ... in order; the padding after them is one more)."""
    row = np.empty((3, seq_len), dtype=np.int32)
    at = 0
    for number, (ids, labels) in enumerate(docs):
        n = len(ids)
        row[0, at:at + n], row[1, at:at + n], row[2, at:at + n] = ids, labels, number
        row[1, at] = IGNORE  # not predictable from its own document
        at += n
    row[0, at:], row[1, at:], row[2, at:] = pad_id, IGNORE, len(docs)
    return row


def pack_documents(lengths: np.ndarray, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Group documents into rows of at most `seq_len` tokens (each document cut to `seq_len`).

    Largest-first: each row starts with the longest document left and is filled, again and again,
    with the longest that still fits. Returns (document indices in row order, row boundaries into
    it): row r holds `order[bounds[r]:bounds[r + 1]]`. Deterministic; O(n log n).
    """
    lengths = np.minimum(np.asarray(lengths, dtype=np.int64), seq_len).tolist()
    by_length: dict[int, list[int]] = {}
    for index in range(len(lengths) - 1, -1, -1):  # each list ends with its lowest index, taken first
        by_length.setdefault(lengths[index], []).append(index)
    present = sorted(by_length)  # the lengths with documents left
    order, bounds = [], [0]

    def take(length: int) -> None:
        docs = by_length[length]
        order.append(docs.pop())
        if not docs:
            present.remove(length)

    while present:
        room = seq_len - present[-1]
        take(present[-1])
        while (j := bisect_right(present, room) - 1) >= 0:
            room -= present[j]
            take(present[j])
        bounds.append(len(order))
    return np.array(order, dtype=np.int64), np.array(bounds, dtype=np.int64)


class Packer:
    """Turns documents into rows as they stream in; what is left over waits for the next.

    documents=True (packed SFT): whole documents share a row until the next one does not fit;
    `carry` then holds the waiting documents back to back, their first tokens marked in its row 2."""

    def __init__(self, seq_len: int, packing: bool, pad_id: int, documents: bool = False) -> None:
        self.seq_len, self.packing, self.pad_id = seq_len, packing, pad_id
        self.documents = packing and documents
        self.carry = np.empty((3 if self.documents else 2, 0), dtype=np.int32)

    def add(self, ids: np.ndarray, mask: np.ndarray | None) -> list[np.ndarray]:
        """The rows ((2 or 3, seq_len) int32) completed by one more document."""
        labels = labels_for(ids, mask)
        if not self.packing:
            return [pad_row(ids, labels, self.seq_len, self.pad_id)]
        if self.documents:
            ids, labels = ids[: self.seq_len], labels[: self.seq_len]
            rows = self.flush() if self.carry.shape[1] + len(ids) > self.seq_len else []
            first = np.zeros(len(ids), dtype=np.int32)
            first[0] = 1
            self.carry = np.concatenate([self.carry, np.stack([ids, labels, first]).astype(np.int32)], axis=1)
            return rows
        self.carry = np.concatenate([self.carry, np.stack([ids, labels]).astype(np.int32)], axis=1)
        n = self.carry.shape[1] // self.seq_len
        rows = [self.carry[:, i * self.seq_len : (i + 1) * self.seq_len] for i in range(n)]
        self.carry = self.carry[:, n * self.seq_len :].copy()
        return rows

    def flush(self) -> list[np.ndarray]:
        """The waiting documents as a last row (packed SFT, at the end of a pass); [] otherwise."""
        if not self.documents or not self.carry.shape[1]:
            return []
        starts = [*np.flatnonzero(self.carry[2]), self.carry.shape[1]]
        docs = [(self.carry[0, a:b], self.carry[1, a:b]) for a, b in zip(starts, starts[1:])]
        self.carry = np.empty((3, 0), dtype=np.int32)
        return [document_row(docs, self.seq_len, self.pad_id)]


class PackedRows:
    """Row i of a flat token array: tokens [i*T, (i+1)*T), read straight from the memmap."""

    def __init__(self, tokens: np.ndarray, mask: np.ndarray | None, seq_len: int) -> None:
        self.tokens, self.mask, self.seq_len = tokens, mask, seq_len
        self.count = len(tokens) // seq_len

    def batch(self, rows: np.ndarray) -> dict[str, torch.Tensor]:
        index = rows[:, None] * self.seq_len + np.arange(self.seq_len)
        ids = self.tokens[index]
        return to_batch(np.stack([ids, labels_for(ids, None if self.mask is None else self.mask[index])], axis=1))


class DocRows:
    """Row i is document i, truncated or padded (`packing=false`)."""

    def __init__(self, tokens: np.ndarray, mask: np.ndarray | None, offsets: np.ndarray, seq_len: int, pad_id: int):
        self.tokens, self.mask, self.offsets = tokens, mask, offsets
        self.seq_len, self.pad_id = seq_len, pad_id
        self.count = len(offsets) - 1

    def document(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Document i's (ids, labels), cut to seq_len."""
        start, stop = self.offsets[i], min(self.offsets[i + 1], self.offsets[i] + self.seq_len)
        ids = self.tokens[start:stop]
        return ids, labels_for(ids, None if self.mask is None else self.mask[start:stop])

    def batch(self, rows: np.ndarray) -> dict[str, torch.Tensor]:
        return to_batch(np.stack([pad_row(*self.document(i), self.seq_len, self.pad_id) for i in rows]))


class PackedDocRows(DocRows):
    """Row i holds whole documents, grouped once by `pack_documents` (packed SFT)."""

    def __init__(self, tokens: np.ndarray, mask: np.ndarray | None, offsets: np.ndarray, seq_len: int, pad_id: int):
        super().__init__(tokens, mask, offsets, seq_len, pad_id)
        self.order, self.bounds = pack_documents(np.diff(offsets), seq_len)
        self.count = len(self.bounds) - 1

    def batch(self, rows: np.ndarray) -> dict[str, torch.Tensor]:
        return to_batch(np.stack([
            document_row([self.document(d) for d in self.order[self.bounds[i]:self.bounds[i + 1]]],
                         self.seq_len, self.pad_id)
            for i in rows]))
