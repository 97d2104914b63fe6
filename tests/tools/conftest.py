"""Fixtures for the tools (generate, evaluate, export, inspect): tiny models and one real short
Lightning training run. The private cache, tiny corpus and tokenizer come from tests/conftest.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from minimind.data.tokenizer import load_tokenizer
from compose_train import compose_train
from tools_helpers import TRAIN_OVERRIDES, tiny_model


@pytest.fixture(scope="session")
def tokenizer(tiny_tokenizer_dir: Path):
    return load_tokenizer(tiny_tokenizer_dir)


@pytest.fixture
def make_model():
    return tiny_model


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory, tiny_corpus: Path, tiny_tokenizer_dir: Path):
    """A real short training run (conf/train.yaml shrunk): (run dir, its final metrics)."""
    from minimind.training.run import train

    run_dir = tmp_path_factory.mktemp("run")
    overrides = TRAIN_OVERRIDES + [f"data.path={tiny_corpus}", f"data.tokenizer={tiny_tokenizer_dir}"]
    metrics, _ = train(compose_train(overrides, run_dir=run_dir))
    return run_dir, metrics
