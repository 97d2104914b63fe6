"""Shared test set-up: offline, a private cache, and a tiny corpus and tokenizer built once."""

import os
from pathlib import Path

import pytest
import torch
from data.helpers import make_conversations, make_pairs, make_texts, write_jsonl  # tests/data/helpers.py: made-up English, no copied text
from compose_train import TRAIN_OVERRIDES, compose_train

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Test models are tiny: one thread per process is as fast, and several processes (DDP ranks,
# data workers, sweep jobs) then never oversubscribe the cores, which slows OpenMP ~10x.
# With `make test` (pytest-xdist) one test process runs per core.
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))  # this process too, whatever imported torch first


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory):
    """Point `minimind.paths.cache_dir()` at a session folder (child processes inherit it):
    tests never read or write ~/.cache, and the default tokenizer is really built from scratch.
    Under pytest-xdist the session's workers share one (in the session's base folder, the parent of
    each worker's): the default tokenizer and token caches are built once per session, under the file
    locks that let racing jobs share them in real use (`minimind.data.build_once`)."""
    with pytest.MonkeyPatch.context() as mp:
        if os.environ.get("PYTEST_XDIST_WORKER"):
            root = tmp_path_factory.getbasetemp().parent / "minimind-cache"
            root.mkdir(exist_ok=True)
        else:
            root = tmp_path_factory.mktemp("minimind-cache")
        mp.setenv("MINIMIND_CACHE", str(root))
        yield root


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pretraining JSONL of 600 made-up documents (about 25k tokens with a 400-token vocabulary)."""
    import json

    path = tmp_path_factory.mktemp("tiny-corpus") / "pretrain.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in make_texts(600)), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_sft_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SFT JSONL of 300 made-up conversations (system prompts and multi-turn ones among them)."""
    import json

    path = tmp_path_factory.mktemp("tiny-sft") / "sft.jsonl"
    path.write_text("".join(json.dumps({"conversations": c}) + "\n" for c in make_conversations(300)),
                    encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_dpo_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DPO JSONL of 240 made-up preference pairs in upstream's format, separable by the reply."""
    import json

    path = tmp_path_factory.mktemp("tiny-dpo") / "dpo.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in make_pairs(240)), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_prompts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A prompt JSONL (upstream's RLAIF format) of 120 questions about made-up English, each expecting one word
    (its `gt`)."""
    words = ("cat", "dog", "bird", "fish", "tree", "river", "stone", "house")
    records = [{"conversations": [{"role": "user", "content": f"Tell me about the {words[i % 8]}: {t}"},
                                  {"role": "assistant", "content": ""}], "gt": words[i % 8]}
               for i, t in enumerate(make_texts(120, seed=3, max_words=8))]
    return write_jsonl(tmp_path_factory.mktemp("tiny-rlaif") / "rlaif.jsonl", records)


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 400-token byte-level BPE tokenizer in MiniMind's format, trained once per session."""
    from minimind.data.tokenizer import train_tokenizer

    out = tmp_path_factory.mktemp("tiny-tokenizer")
    chat_turns = [m["content"] for c in make_conversations(50) for m in c]
    return train_tokenizer(make_texts(300) + chat_turns, 400, out, show_progress=False)


@pytest.fixture
def tiny_run(tiny_corpus, tiny_tokenizer_dir):
    """Overrides for a real training run that takes seconds on a CPU: a 2-layer model of width 64
    on the tiny corpus and tokenizer, fp32, CSV logging, 33 steps with validation every 10."""
    return ["model=tiny", "model.hidden_size=64", "model.num_hidden_layers=2", "model.num_attention_heads=4",
            "model.num_key_value_heads=2", "model.intermediate_size=128", "model.vocab_size=400",
            "trainer=cpu", "precision=fp32", "logger=csv", f"data.path={tiny_corpus}",
            f"data.tokenizer={tiny_tokenizer_dir}", "data.seq_len=32", "data.batch_size=8", "data.num_workers=0",
            "data.val_fraction=0.1", "tokens=8448", "trainer.val_check_interval=10", "trainer.limit_val_batches=4",
            "trainer.enable_progress_bar=false", "callbacks.samples.max_new_tokens=8", "optimizer.lr=3e-3"]


@pytest.fixture(scope="session")
def compose_cfg():
    return compose_train


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory, tiny_corpus: Path, tiny_tokenizer_dir: Path):
    """A real short training run (conf/train.yaml shrunk): (run dir, its final metrics)."""
    from minimind.training.run import train

    run_dir = tmp_path_factory.mktemp("run")
    overrides = TRAIN_OVERRIDES + [f"data.path={tiny_corpus}", f"data.tokenizer={tiny_tokenizer_dir}"]
    metrics, _ = train(compose_train(overrides, run_dir=run_dir))
    return run_dir, metrics
