"""Tokenize a corpus once; reuse it in every later run, memory-mapped.

`<root>/tokens/<key>/` holds, for each split (`train`, `val`): `<split>.tokens` (all its
documents' token ids back to back, uint16 when the vocabulary allows, else uint32),
`<split>.offsets.npy` (where each document starts; int64) and, for SFT, `<split>.mask`
(1 where a token is trained on; for DPO pairs, `preference.py`'s two bits), plus `meta.json`
(counts, bad-record report).

The key hashes what decides those bytes: the corpus's content fingerprint, the tokenizer's
fingerprint, the format, the validation fraction and, for SFT, how conversations are rendered
(`ChatOptions`). `seq_len` and `packing` are not in it: they are applied when reading, so
changing them reuses the same cache.

The build runs once even when parallel jobs start together (`build_once`), logs progress with
tokens/s, and meets every bad record before training starts.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from array import array
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np
from transformers import PreTrainedTokenizerFast

from minimind.data import tokenizer as tok_format
from minimind.data.build_once import build_once
from minimind.data.corpus import Corpus
from minimind.data.encode import ChatOptions, Encoder
from minimind.data.errors import BadRecords, DataError
from minimind.data.records import is_val

log = logging.getLogger(__name__)

VERSION = 1  # bump when the layout changes
SFT_MASK_RULE = 2  # bump when the trained tokens of a conversation change (2: the newline after <|im_end|>)
SPLITS = ("train", "val")
ENCODE_GROUP = 256  # documents per encode_batch call
PROGRESS_EVERY_S = 5.0


def cache_key(corpus: Corpus, tokenizer: PreTrainedTokenizerFast, fmt: str, val_fraction: float,
              chat_options: ChatOptions = ChatOptions()) -> str:
    parts = {
        "version": VERSION,
        "corpus": corpus.fingerprint(),
        "tokenizer": tok_format.fingerprint(tokenizer),
        "format": fmt,
        "val_fraction": val_fraction,
    }
    if fmt != "pretrain":  # conversations (sft), or pairs of them (dpo)
        parts.update(mask_rule=SFT_MASK_RULE, render=chat_options.key())
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class Split:
    tokens: np.ndarray  # memmap, all documents back to back
    offsets: np.ndarray  # int64, len = documents + 1
    mask: np.ndarray | None  # memmap of 0/1 (SFT) or None (every token trained)


class TokenCache:
    """A finished cache directory, opened read-only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.meta = json.loads((path / "meta.json").read_text())

    def split(self, name: str) -> Split:
        tokens = self._memmap(f"{name}.tokens", self.meta["dtype"])
        mask = self._memmap(f"{name}.mask", "uint8") if self.meta["format"] != "pretrain" else None
        return Split(tokens, np.load(self.path / f"{name}.offsets.npy"), mask)

    def _memmap(self, name: str, dtype: str) -> np.ndarray:
        if (self.path / name).stat().st_size == 0:  # np.memmap cannot map an empty file
            return np.empty(0, dtype=dtype)
        return np.memmap(self.path / name, dtype=dtype, mode="r")


def _write(tmp: Path, corpus: Corpus, tokenizer: PreTrainedTokenizerFast, fmt: str, val_fraction: float, policy: str,
           chat_options: ChatOptions):
    encoder, bad = Encoder(tokenizer, fmt, chat_options), BadRecords(policy)
    dtype = np.uint16 if len(tokenizer) <= 2**16 else np.uint32
    files = {s: open(tmp / f"{s}.tokens", "wb") for s in SPLITS}
    masks = {s: open(tmp / f"{s}.mask", "wb") for s in SPLITS} if fmt != "pretrain" else {}
    offsets = {s: array("q", [0]) for s in SPLITS}
    start = last = time.monotonic()
    records = corpus.records(fmt, bad)
    while group := list(islice(records, ENCODE_GROUP)):
        for record, (ids, mask) in zip(group, encoder.encode(group)):
            split = "val" if is_val(record.doc_id, val_fraction) else "train"
            files[split].write(ids.astype(dtype).tobytes())
            if masks:
                masks[split].write(mask.astype(np.uint8).tobytes())
            offsets[split].append(offsets[split][-1] + len(ids))
        if time.monotonic() - last > PROGRESS_EVERY_S:
            last = time.monotonic()
            n = sum(o[-1] for o in offsets.values())
            log.info("tokenizing %s: %d documents, %d tokens, %.0f tokens/s", corpus.name,
                     sum(len(o) - 1 for o in offsets.values()), n, n / (last - start))
    for f in [*files.values(), *masks.values()]:
        f.close()
    docs = {s: len(offsets[s]) - 1 for s in SPLITS}
    if not sum(docs.values()):
        raise DataError(f"data.path={corpus.name!r} has no usable documents ({bad.summary()})")
    for s in SPLITS:
        np.save(tmp / f"{s}.offsets.npy", np.frombuffer(offsets[s], dtype=np.int64))
    seconds = time.monotonic() - start
    meta = {
        "version": VERSION, "source": corpus.name, "format": fmt, "val_fraction": val_fraction,
        "dtype": np.dtype(dtype).name, "vocab_size": len(tokenizer),
        "documents": docs, "tokens": {s: offsets[s][-1] for s in SPLITS},
        "bad_records": bad.as_dict(), "build_seconds": round(seconds, 2), "built_by_pid": os.getpid(),
    }
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
    total = sum(meta["tokens"].values())
    log.info("tokenized %s: %d documents, %d tokens in %.1fs (%.0f tokens/s); %s",
             corpus.name, sum(docs.values()), total, seconds, total / max(seconds, 1e-9), bad.summary())


def ensure_cache(
    corpus: Corpus,
    tokenizer: PreTrainedTokenizerFast,
    fmt: str,
    val_fraction: float,
    root: Path,
    on_bad_record: str = "error",
    chat_options: ChatOptions = ChatOptions(),
) -> tuple[TokenCache, bool]:
    """The cache for these settings, built first if missing; True if this call built it."""
    path = root / "tokens" / cache_key(corpus, tokenizer, fmt, val_fraction, chat_options)
    built = build_once(path, lambda tmp: _write(tmp, corpus, tokenizer, fmt, val_fraction, on_bad_record,
                                                chat_options))
    if not built:
        log.info("reusing token cache %s", path)
    return TokenCache(path), built
