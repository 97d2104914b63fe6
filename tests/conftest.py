"""Shared test set-up: offline, a private cache, and a tiny corpus and tokenizer built once."""

import os
import random
from pathlib import Path

import pytest

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Test models are tiny: one thread per process is as fast, and several processes (DDP ranks,
# data workers, sweep jobs) then never oversubscribe the cores, which slows OpenMP ~10x.
os.environ.setdefault("OMP_NUM_THREADS", "1")

WORDS = ("the a small big red blue green old new cat dog bird fish tree river stone house road light dark "
         "runs sees finds keeps makes takes gives over under near behind with without and or but because").split()


def made_up_texts(n: int, seed: int = 0, min_words: int = 5, max_words: int = 60) -> list[str]:
    """`n` distinct documents of made-up English ("Document 7. the red cat ..."): no copied text."""
    rng = random.Random(seed)
    return [f"Document {i}. " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(min_words, max_words))) + "."
            for i in range(n)]


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory):
    """Point `minimind.paths.cache_dir()` at a session folder (child processes inherit it):
    tests never read or write ~/.cache, and the default tokenizer is really built from scratch."""
    with pytest.MonkeyPatch.context() as mp:
        root = tmp_path_factory.mktemp("minimind-cache")
        mp.setenv("MINIMIND_CACHE", str(root))
        yield root


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pretraining JSONL of 600 made-up documents (about 25k tokens with a 400-token vocabulary)."""
    import json

    path = tmp_path_factory.mktemp("tiny-corpus") / "pretrain.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in made_up_texts(600)), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 400-token byte-level BPE tokenizer in MiniMind's format, trained once per session."""
    from minimind.data.tokenizer import train_tokenizer

    out = tmp_path_factory.mktemp("tiny-tokenizer")
    return train_tokenizer(made_up_texts(300), 400, out, show_progress=False)
