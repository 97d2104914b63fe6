"""Data-layer throughput, in tokens per second, on this machine.

    .venv/bin/python benchmarks/data_throughput.py
    .venv/bin/python benchmarks/data_throughput.py --path data.jsonl --tokenizer DIR --seq-len 512 --batch-size 32

Measures, on the default corpus (written to a temporary JSONL file so that reading is
MiniMind's usual format) or on `--path`:

* build: tokenizing the whole corpus once into a fresh token cache (`data.cache=true`);
* stream, in-process: reading + tokenizing + packing + shuffling (`data.cache=false`) in this
  process, with the tokenizer's threads on all cores, then on one thread: the rate of one
  DataLoader worker (a forked worker tokenizes on one thread);
* stream, N workers: the same through the training DataLoader with `--workers` processes;
* cache read: batches from the memory-mapped cache in one process (the default path).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from itertools import islice
from pathlib import Path

from minimind.data.cache import ensure_cache
from minimind.data.cached_dataset import CachedDataset
from minimind.data.corpus import Corpus
from minimind.data.default_corpus import documents
from minimind.data.default_tokenizer import resolve_tokenizer
from minimind.data.loader import ResumableLoader
from minimind.data.packing import PackedRows
from minimind.data.streaming_dataset import StreamingDataset
from minimind.cli import expected_errors


def rate(batches, min_seconds: float) -> tuple[float, int]:
    """(tokens/s, tokens) over batches drawn for at least `min_seconds` (or until they run out)."""
    start, tokens = time.perf_counter(), 0
    for batch in batches:
        tokens += batch["input_ids"].numel()
        if time.perf_counter() - start >= min_seconds:
            break
    return tokens / (time.perf_counter() - start), tokens


def endless(loader):
    while True:
        yield from loader


@expected_errors  # a bad path or checkpoint: one `error: ...` line, as the tools print
def main() -> None:
    with tempfile.TemporaryDirectory(prefix="minimind-bench-") as tmp:
        measure(parse_args(), Path(tmp))


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--path", default=None, help="corpus (default: the embedded corpus as JSONL)")
    p.add_argument("--tokenizer", default=None, help="tokenizer directory (default: the default tokenizer)")
    p.add_argument("--seq-len", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seconds", type=float, default=5.0, help="minimum time per streaming/reading measurement")
    return p.parse_args()


def measure(args: argparse.Namespace, tmp: Path) -> None:
    tokenizer = resolve_tokenizer(args.tokenizer)
    path = args.path
    if path is None:
        path = tmp / "default.jsonl"
        path.write_text("".join(json.dumps({"text": text}) + "\n" for _, text in documents()), encoding="utf-8")
    corpus = Corpus(str(path))
    fmt = corpus.resolve_format("auto")
    T, B = args.seq_len, args.batch_size
    print(f"corpus {corpus.name} ({Path(path).stat().st_size / 1e6:.1f} MB, {fmt}), vocab {len(tokenizer)}, "
          f"batch {B} x {T}")

    start = time.perf_counter()
    cache, _ = ensure_cache(corpus, tokenizer, fmt, 0.0, tmp / "cache")
    tokens = cache.meta["tokens"]["train"]
    print(f"build (tokenize once):         {tokens / (time.perf_counter() - start):>9,.0f} tokens/s  ({tokens:,} tokens)")

    def stream():
        return StreamingDataset(corpus, fmt, tokenizer, T, B, packing=fmt == "pretrain", val_fraction=0.0)

    tps, n = rate(stream(), args.seconds)
    print(f"stream, in-process, {os.cpu_count()} threads: {tps:>9,.0f} tokens/s  ({n:,} tokens)")
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # as in a DataLoader worker
    tps, n = rate(stream(), args.seconds)
    print(f"stream, in-process, 1 thread:  {tps:>9,.0f} tokens/s  ({n:,} tokens)  = per worker")
    loader = ResumableLoader(stream(), num_workers=args.workers)
    tps, n = rate(islice(loader, 1, None), args.seconds)  # the first batch pays for starting the workers
    print(f"stream, {args.workers} workers:             {tps:>9,.0f} tokens/s  ({n:,} tokens)")

    split = cache.split("train")
    dataset = CachedDataset(PackedRows(split.tokens, split.mask, T), B, seed=0)
    tps, n = rate(endless(ResumableLoader(dataset)), args.seconds)
    print(f"cache read, in-process:     {tps:>12,.0f} tokens/s  ({n:,} tokens)")


if __name__ == "__main__":
    main()
