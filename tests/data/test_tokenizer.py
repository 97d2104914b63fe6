"""MiniMind's tokenizer format: train, save, load with AutoTokenizer, chat template, bytes per token."""

from __future__ import annotations

import json

import pytest
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from minimind.data import DataError, load_tokenizer, train_tokenizer
from minimind.data.tokenizer import fingerprint, token_bytes

from .helpers import make_texts


def test_saved_dir_is_minimind_format_and_loads_with_autotokenizer(tiny_tokenizer_dir):
    config = json.loads((tiny_tokenizer_dir / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert config["pad_token"] == "<|endoftext|>" and config["eos_token"] == "<|im_end|>"
    assert "chat_template" in config
    tok = AutoTokenizer.from_pretrained(str(tiny_tokenizer_dir))
    assert isinstance(tok, PreTrainedTokenizerFast)
    assert len(tok) == 400
    assert [tok.convert_tokens_to_ids(t) for t in ("<|endoftext|>", "<|im_start|>", "<|im_end|>")] == [0, 1, 2]
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id) == (0, 1, 2)


def test_chat_template_renders_chatml_as_minimind3_does(tiny_tokenizer):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hello"}]
    assert tiny_tokenizer.apply_chat_template(messages, tokenize=False) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"
        "<|im_start|>assistant\n<think>\n\n</think>\n\nhello<|im_end|>\n"
    )
    prompt = tiny_tokenizer.apply_chat_template(messages[1:2], tokenize=False, add_generation_prompt=True)
    assert prompt == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
    ids = tiny_tokenizer(prompt, add_special_tokens=False)["input_ids"]
    assert ids[0] == 1 and ids.count(2) == 1  # the special tokens are single tokens


def test_byte_level_round_trip_and_token_bytes(tiny_tokenizer):
    text = "Déjà vu — naïve café ✓ 日本 <|endoftext|> the end"
    ids = tiny_tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tiny_tokenizer.decode(ids) == text  # byte-level: any UTF-8 round-trips
    nbytes = token_bytes(tiny_tokenizer)
    assert nbytes.shape == (len(tiny_tokenizer),) and nbytes[:3].tolist() == [0, 0, 0]
    assert int(nbytes[ids].sum()) == len(text.replace("<|endoftext|>", "").encode())  # specials count 0 bytes


def test_fingerprint_tells_tokenizers_apart(tiny_tokenizer, tmp_path):
    other = load_tokenizer(train_tokenizer(make_texts(100, seed=5), 300, tmp_path, show_progress=False))
    assert fingerprint(tiny_tokenizer) == fingerprint(load_tokenizer(tiny_tokenizer.name_or_path))
    assert fingerprint(other) != fingerprint(tiny_tokenizer)


def test_bad_tokenizer_inputs_are_explained(tmp_path):
    with pytest.raises(DataError, match="too small"):
        train_tokenizer(["abc"], 100, tmp_path / "t")
    with pytest.raises(DataError, match="missing tokenizer.json, tokenizer_config.json"):
        load_tokenizer(tmp_path)
