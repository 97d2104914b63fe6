"""`python -m minimind.data.train_tokenizer`, run once as a user would, and its argument errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from minimind.data import DataError, load_tokenizer
from minimind.data.train_tokenizer import main

from .helpers import make_texts, write_pretrain


def test_command_trains_a_loadable_tokenizer(tmp_path):
    corpus = write_pretrain(tmp_path / "corpus.jsonl", make_texts(200))
    out = tmp_path / "tok"
    result = subprocess.run(
        [sys.executable, "-m", "minimind.data.train_tokenizer", f"data.path={corpus}", "vocab_size=320", f"out={out}"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "trained a 320-token tokenizer" in result.stderr
    tok = load_tokenizer(out)
    assert len(tok) == 320 and tok.convert_tokens_to_ids("<|im_end|>") == 2


def test_command_explains_bad_arguments(tmp_path):
    with pytest.raises(DataError, match=r"missing data.path=\.\.\."):
        main(["vocab_size=320", f"out={tmp_path}"])
    with pytest.raises(DataError, match="unexpected argument 'vocab=3'"):
        main(["vocab=3"])
    with pytest.raises(DataError, match="no such file"):
        main([f"data.path={tmp_path}/none.jsonl", f"out={tmp_path}"])
