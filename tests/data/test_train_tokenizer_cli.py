"""`python -m minimind.data.train_tokenizer`, run once as a user would, and its argument errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from commands import assert_clean_failure, run_main

from minimind.data import load_tokenizer
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


@pytest.mark.parametrize("args, message", [
    (["vocab_size=320", "out=OUT"], "missing data.path=..."),
    (["data.path=", "out=OUT"], "data.path is not set"),  # not the working directory
    (["vocab=3"], "unexpected argument 'vocab=3'"),
    (["data.path=OUT/none.jsonl", "out=OUT"], "no such file"),
    (["data.path=default", "vocab_size=lots", "out=OUT"], "vocab_size=lots must be a whole number"),
])
def test_command_explains_bad_arguments_without_a_traceback(tmp_path, args, message, capsys, monkeypatch):
    args = [a.replace("OUT", str(tmp_path)) for a in args]
    assert_clean_failure(*run_main(main, args, capsys, monkeypatch), message)
