"""MiniMind's tokenizer format: train one, save it, load it.

A tokenizer directory holds `tokenizer.json` (byte-level BPE) and `tokenizer_config.json`
(special tokens and a ChatML `chat_template`), exactly as upstream MiniMind's
`scripts/train_tokenizer.py` writes them, so any upstream tokenizer loads here and ours
load there. Special tokens: `<|endoftext|>` = 0 (document separator and padding),
`<|im_start|>` = 1, `<|im_end|>` = 2.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from minimind.data.errors import DataError

EOS, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
SPECIAL_TOKENS = (EOS, IM_START, IM_END)
MIN_VOCAB = 256 + len(SPECIAL_TOKENS)  # every byte, plus the specials

# ChatML as minimind-3 renders it (upstream's train_tokenizer.py writes the same format), one
# message per block:
# * every assistant turn opens with a <think> block: its `reasoning_content` (or a <think>...</think>
#   prefix of its content), empty when there is none; its `tool_calls` follow as <tool_call> JSON;
# * `tools=[...]` (upstream takes them from the system message) are listed in the system block;
# * `tool` messages (results) are shown to the model as a user turn of <tool_response> blocks;
# * `add_generation_prompt` opens the assistant's turn with an empty think block (`open_thinking=True`:
#   an open one, for the model to think first).
CHAT_TEMPLATE = """\
{%- if tools or messages[0].role == 'system' %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0].role == 'system' %}{{- messages[0].content }}{%- endif %}
    {%- if tools %}
        {%- if messages[0].role == 'system' %}{{- '\\n\\n' }}{%- endif %}
        {{- '# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n'
            'You are provided with function signatures within <tools></tools> XML tags:\\n<tools>' }}
        {%- for tool in tools %}{{- '\\n' + tool | tojson }}{%- endfor %}
        {{- '\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments '
            'within <tool_call></tool_call> XML tags:\\n<tool_call>\\n'
            '{"name": <function-name>, "arguments": <args-json-object>}\\n</tool_call>' }}
    {%- endif %}
    {{- '<|im_end|>\\n' }}
{%- endif %}
{%- for message in messages %}
    {%- set content = message.content if message.content is string else '' %}
    {%- if message.role == 'user' or (message.role == 'system' and not loop.first) %}
        {{- '<|im_start|>' + message.role + '\\n' + content + '<|im_end|>\\n' }}
    {%- elif message.role == 'assistant' %}
        {%- set reasoning = '' %}
        {%- if message.reasoning_content is string %}
            {%- set reasoning = message.reasoning_content %}
        {%- elif '</think>' in content %}
            {%- set reasoning = content.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') %}
            {%- set content = content.split('</think>')[-1].lstrip('\\n') %}
        {%- endif %}
        {{- '<|im_start|>assistant\\n<think>\\n' + reasoning.strip('\\n') + '\\n</think>\\n\\n' + content.lstrip('\\n') }}
        {%- for call in message.tool_calls or [] %}
            {%- if content or not loop.first %}{{- '\\n' }}{%- endif %}
            {%- set call = call.function if call.function else call %}
            {{- '<tool_call>\\n{"name": "' + call.name + '", "arguments": ' }}
            {{- call.arguments if call.arguments is string else call.arguments | tojson }}
            {{- '}\\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == 'tool' %}
        {%- if loop.first or messages[loop.index0 - 1].role != 'tool' %}{{- '<|im_start|>user' }}{%- endif %}
        {{- '\\n<tool_response>\\n' + content + '\\n</tool_response>' }}
        {%- if loop.last or messages[loop.index0 + 1].role != 'tool' %}{{- '<|im_end|>\\n' }}{%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' + ('<think>\\n' if open_thinking is true else '<think>\\n\\n</think>\\n\\n') }}
{%- endif %}"""


def _config() -> dict:
    """`tokenizer_config.json` in upstream MiniMind's layout."""
    added = {
        str(i): {"content": tok, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False, "special": True}
        for i, tok in enumerate(SPECIAL_TOKENS)
    }
    return {
        "add_bos_token": False,
        "add_eos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": added,
        "additional_special_tokens": [],
        "bos_token": IM_START,
        "clean_up_tokenization_spaces": False,
        "eos_token": IM_END,
        "legacy": True,
        "model_max_length": 32768,
        "pad_token": EOS,
        "sp_model_kwargs": {},
        "spaces_between_special_tokens": False,
        "tokenizer_class": "PreTrainedTokenizerFast",
        "unk_token": EOS,
        "chat_template": CHAT_TEMPLATE,
    }


def train_tokenizer(texts: Iterable[str], vocab_size: int, out_dir: str | Path, show_progress: bool = True) -> Path:
    """Train a byte-level BPE tokenizer on `texts` and save it to `out_dir` in MiniMind's format."""
    if vocab_size < MIN_VOCAB:
        raise DataError(f"vocab_size={vocab_size} is too small: byte-level BPE needs at least {MIN_VOCAB}")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=show_progress,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    for i, special in enumerate(SPECIAL_TOKENS):
        assert tok.token_to_id(special) == i, f"{special} should have id {i}"
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok.save(str(out / "tokenizer.json"))
    (out / "tokenizer_config.json").write_text(json.dumps(_config(), ensure_ascii=False, indent=2), encoding="utf-8")
    return out


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerFast:
    """Load a tokenizer directory in MiniMind's format (never runs remote code)."""
    path = Path(path).expanduser()
    missing = [n for n in ("tokenizer.json", "tokenizer_config.json") if not (path / n).is_file()]
    if missing:
        raise DataError(
            f"data.tokenizer={str(path)!r} is not a tokenizer directory: missing {', '.join(missing)}; "
            "train one with `python -m minimind.data.train_tokenizer`"
        )
    tok = AutoTokenizer.from_pretrained(str(path), trust_remote_code=False)
    if not isinstance(tok, PreTrainedTokenizerFast):
        raise DataError(f"{path}: expected a fast tokenizer (tokenizer.json), got {type(tok).__name__}")
    for special in SPECIAL_TOKENS:
        if tok.convert_tokens_to_ids(special) in (None, tok.unk_token_id) and special != tok.unk_token:
            raise DataError(f"{path}: the tokenizer has no {special} token; MiniMind's format needs {SPECIAL_TOKENS}")
    if not tok.chat_template:
        raise DataError(f"{path}: tokenizer_config.json has no chat_template (needed for SFT data)")
    return tok


def fingerprint(tok: PreTrainedTokenizerFast) -> str:
    """A hash of what decides the token ids: the tokenizer itself and its chat template."""
    h = hashlib.sha256(tok.backend_tokenizer.to_str().encode())
    h.update((tok.chat_template or "").encode())
    return h.hexdigest()


def token_bytes(tok: PreTrainedTokenizerFast) -> torch.Tensor:
    """UTF-8 bytes each token id stands for (special tokens: 0), for bits-per-byte.

    In byte-level BPE every character of a token's string stands for exactly one byte.
    """
    special = set(tok.all_special_ids) | {tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    vocab = tok.convert_ids_to_tokens(list(range(len(tok))))
    return torch.tensor([0 if i in special else len(t) for i, t in enumerate(vocab)], dtype=torch.long)


def check_vocab_fits(tokenizer_size: int, model_vocab_size: int, fix: str) -> None:
    """Refuse a tokenizer with more ids than the model has embeddings (its extra ids would index past them)."""
    if tokenizer_size > model_vocab_size:
        raise DataError(f"the tokenizer has {tokenizer_size} tokens but the model only {model_vocab_size} "
                        f"(model.vocab_size): {fix}")
