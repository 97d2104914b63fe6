"""Records -> token ids, plus which tokens are trained on.

Pretraining text is trained on everywhere and ends with `<|endoftext|>`, the document
separator. A conversation is rendered as upstream MiniMind's `SFTDataset` renders it: the
tokenizer's chat template, with the `tools` of its system message (upstream's minimind-3
template lists them in the system block, renders `reasoning_content` as a `<think>` block and
`tool_calls` as `<tool_call>` JSON). Only the assistant's replies are trained on, the tokens
upstream marks: from after `<|im_start|>assistant\\n` through the closing `<|im_end|>` and the
newline after it. The spans are found on the rendered text and mapped to tokens through their
character offsets, so this works for any ChatML template.

Two of upstream's augmentations are options (off by default; `data.<name>=`):

* `add_system_ratio`: the probability that a conversation without a system message (and without
  tools) gets a random system prompt (upstream: 0.2);
* `strip_empty_think`: the probability that a conversation's empty think blocks
  (`<think>\\n\\n</think>\\n\\n`) are removed (upstream: 0.8), so the model also learns to answer
  without one.

Upstream draws them anew each time a sample is read; here each record's draw is fixed by
`data.seed` and the record's id, because tokens are cached and a resumed run must see exactly
the rows it would have seen.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Any

import numpy as np
from transformers import PreTrainedTokenizerFast

from minimind.data.records import Record
from minimind.data.tokenizer import EOS, IM_END, IM_START

ASSISTANT = f"{IM_START}assistant\n"
REPLY_END = f"{IM_END}\n"
EMPTY_THINK = "<think>\n\n</think>\n\n"
# Upstream's random system prompts (dataset/lm_dataset.py, Apache-2.0).
SYSTEM_PROMPTS = (
    "你是一个知识丰富的AI，尽力为用户提供准确的信息。",
    "你是minimind，一个小巧但有用的语言模型。",
    "你是一个专业的AI助手，请提供有价值的回答。",
    "你是minimind，请尽力帮助用户解决问题。",
    "你是一个可靠的AI，请给出准确的回答。",
    "You are a helpful AI assistant.",
    "You are minimind, a lightweight intelligent assistant.",
    "You are a friendly chatbot. Please answer the user's questions carefully.",
    "You are a knowledgeable AI. Try your best to provide accurate information.",
    "You are minimind, a small but useful language model.",
)


@dataclass(frozen=True)
class ChatOptions:
    """How conversations are rendered beyond the template (see the module docstring)."""

    add_system_ratio: float = 0.0
    strip_empty_think: float = 0.0
    seed: int = 0

    def key(self) -> dict[str, Any]:
        """What decides the rendered text (the seed only when something is random)."""
        random_ = bool(self.add_system_ratio or self.strip_empty_think)
        return {"add_system_ratio": self.add_system_ratio, "strip_empty_think": self.strip_empty_think,
                "seed": self.seed if random_ else None}

    def rng(self, doc_id: str) -> random.Random:
        digest = hashlib.blake2b(f"{self.seed}\0{doc_id}".encode(), digest_size=8).digest()
        return random.Random(int.from_bytes(digest, "big"))


def render(tokenizer: PreTrainedTokenizerFast, messages: list[dict[str, Any]], options: ChatOptions = ChatOptions(),
           doc_id: str = "", **template: Any) -> str:
    """A conversation as the text the model reads: the chat template, with `options` applied.
    `template`: more arguments for the template (a prompt's `add_generation_prompt`, `open_thinking`)."""
    rng = options.rng(doc_id)
    tools = next((m["tools"] for m in reversed(messages) if m["role"] == "system" and m.get("tools")), None)
    if options.add_system_ratio and tools is None and messages[0]["role"] != "system" \
            and rng.random() < options.add_system_ratio:
        messages = [{"role": "system", "content": rng.choice(SYSTEM_PROMPTS)}, *messages]
    text = tokenizer.apply_chat_template(messages, tools=tools, tokenize=False, **template)
    if options.strip_empty_think and EMPTY_THINK in text and rng.random() < options.strip_empty_think:
        text = text.replace(EMPTY_THINK, "")
    return text


def assistant_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the assistant replies in a rendered conversation: each from after
    `<|im_start|>assistant\\n` through its `<|im_end|>` and the newline after it (or to the end)."""
    spans, start = [], text.find(ASSISTANT)
    while start >= 0:
        begin = start + len(ASSISTANT)
        end = text.find(IM_END, begin)
        if end < 0:
            end = len(text)
        else:
            end += len(REPLY_END) if text.startswith(REPLY_END, end) else len(IM_END)
        spans.append((begin, end))
        start = text.find(ASSISTANT, end)
    return spans


class Encoder:
    """Encodes batches of records (faster than one at a time) for one data format."""

    def __init__(self, tokenizer: PreTrainedTokenizerFast, fmt: str, options: ChatOptions = ChatOptions()) -> None:
        self.tokenizer = tokenizer
        self.fmt = fmt
        self.options = options
        self.eos_id = tokenizer.convert_tokens_to_ids(EOS)

    def encode(self, records: list[Record]) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """(ids int32, trained mask or None for "all") per record."""
        if self.fmt == "dpo":  # two conversations per record, each encoded as below (minimind.data.preference)
            from minimind.data.preference import encode_pairs

            return encode_pairs(Encoder(self.tokenizer, "sft", self.options).encode, records)
        backend = self.tokenizer.backend_tokenizer
        if self.fmt == "pretrain":
            encodings = backend.encode_batch_fast([r.value for r in records], add_special_tokens=False)
            return [(np.array([*e.ids, self.eos_id], dtype=np.int32), None) for e in encodings]
        texts = [render(self.tokenizer, r.value, self.options, r.doc_id) for r in records]
        out = []
        for text, e in zip(texts, backend.encode_batch(texts, add_special_tokens=False)):
            starts = np.fromiter((s for s, _ in e.offsets), dtype=np.int64, count=len(e.offsets))
            mask = np.zeros(len(starts), dtype=bool)
            for begin, end in assistant_spans(text):
                mask |= (starts >= begin) & (starts < end)
            out.append((np.array(e.ids, dtype=np.int32), mask))
        return out
