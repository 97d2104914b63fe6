"""Fixtures for the tools (generate, evaluate, export, inspect): tiny models and one real short
Lightning training run. The private cache, tiny corpus and tokenizer come from tests/conftest.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from minimind.data.tokenizer import load_tokenizer
from tools_helpers import tiny_model


@pytest.fixture(scope="session")
def tokenizer(tiny_tokenizer_dir: Path):
    return load_tokenizer(tiny_tokenizer_dir)


@pytest.fixture
def make_model():
    return tiny_model


