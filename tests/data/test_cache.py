"""The token cache: built once even by racing processes, keyed by what decides its bytes."""

from __future__ import annotations

import multiprocessing as mp
import os
import time

from minimind.data.cache import cache_key, ensure_cache
from minimind.data.corpus import Corpus
from minimind.data.tokenizer import load_tokenizer, train_tokenizer

from .helpers import datamodule, make_texts, write_pretrain


def _race(args):
    barrier, path, tokenizer_dir, root, out = args
    tokenizer, corpus = load_tokenizer(tokenizer_dir), Corpus(path)
    barrier.wait()
    cache, built = ensure_cache(corpus, tokenizer, "pretrain", 0.1, root)
    out.put((os.getpid(), built, str(cache.path), cache.meta["built_by_pid"], time.time()))


def test_racing_processes_build_the_cache_once(tiny_tokenizer_dir, tmp_path):
    path = write_pretrain(tmp_path / "big.jsonl", make_texts(6000))  # a build long enough to overlap
    ctx = mp.get_context("fork")
    barrier, out = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_race, args=((barrier, str(path), tiny_tokenizer_dir, tmp_path / "c", out),))
             for _ in range(2)]
    for p in procs:
        p.start()
    results = sorted(out.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    assert sorted(built for _, built, *_ in results) == [False, True]  # exactly one built it
    [builder] = [pid for pid, built, *_ in results if built]
    assert {(cache_path, by) for _, _, cache_path, by, _ in results} == {(results[0][2], builder)}  # the same cache
    assert [p.name for p in (tmp_path / "c" / "tokens").iterdir() if not p.name.endswith(".lock")] == [
        os.path.basename(results[0][2])]  # no leftover temporary directory


def test_key_follows_tokenizer_format_and_corpus_but_not_seq_len(tiny_tokenizer, tiny_tokenizer_dir, tmp_path):
    path = write_pretrain(tmp_path / "c.jsonl", make_texts(50))
    corpus = Corpus(str(path))
    key = cache_key(corpus, tiny_tokenizer, "pretrain", 0.1)
    other_tok = load_tokenizer(train_tokenizer(make_texts(80, seed=9), 300, tmp_path / "t2", show_progress=False))
    assert cache_key(corpus, other_tok, "pretrain", 0.1) != key
    assert cache_key(corpus, tiny_tokenizer, "pretrain", 0.2) != key
    assert cache_key(corpus, tiny_tokenizer, "sft", 0.1) != key
    first = datamodule(path, tiny_tokenizer_dir, tmp_path, seq_len=16)
    second = datamodule(path, tiny_tokenizer_dir, tmp_path, seq_len=32, packing=False)
    assert first._open_cache().path == second._open_cache().path  # seq_len/packing are applied when reading
    assert first._open_cache().split("train").tokens.dtype.name == "uint16"
    write_pretrain(path, make_texts(51))  # an edited corpus gets a new cache
    assert cache_key(Corpus(str(path)), tiny_tokenizer, "pretrain", 0.1) != key
