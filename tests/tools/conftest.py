"""Fixtures for the tools (generate, evaluate, export, inspect): a tokenizer trained on a tiny
generated corpus, tiny models, and one real short Lightning training run, all built here.
(The private cache, `MINIMIND_CACHE`, comes from tests/conftest.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import open_dict

from minimind.data.tokenizer import load_tokenizer, train_tokenizer
from minimind.paths import CONF_DIR, PROJECT_ROOT
from tools_helpers import TRAIN_OVERRIDES, VOCAB, make_texts, tiny_model


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small pretraining corpus in upstream's JSONL format."""
    path = tmp_path_factory.mktemp("corpus") / "stories.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in make_texts(400)), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A MiniMind-format tokenizer (byte-level BPE, specials 0/1/2, ChatML template) of VOCAB tokens."""
    texts = make_texts(400) + ["Hello there. How are you? I am fine, thank you."] * 5
    return train_tokenizer(texts, VOCAB, tmp_path_factory.mktemp("tokenizer"), show_progress=False)


@pytest.fixture(scope="session")
def tokenizer(tokenizer_dir: Path):
    return load_tokenizer(tokenizer_dir)


@pytest.fixture
def make_model():
    return tiny_model


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory, corpus: Path, tokenizer_dir: Path):
    """A real short training run (conf/train.yaml shrunk): (run dir, its final metrics)."""
    from minimind.training.run import train

    run_dir = tmp_path_factory.mktemp("run")
    overrides = TRAIN_OVERRIDES + [f"data.path={corpus}", f"data.tokenizer={tokenizer_dir}"]
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    GlobalHydra.instance().clear()
    with open_dict(cfg):
        cfg.paths.output_dir = str(run_dir)
        cfg.paths.root_dir = str(PROJECT_ROOT)
        cfg.paths.log_dir = str(run_dir / "logs")
    metrics, _ = train(cfg)
    return run_dir, metrics
