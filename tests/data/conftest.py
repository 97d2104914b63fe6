"""Fixtures for the data tests; the private cache and the tiny tokenizer come from tests/conftest.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from minimind.data.tokenizer import load_tokenizer


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_tokenizer_dir: Path):
    return load_tokenizer(tiny_tokenizer_dir)
