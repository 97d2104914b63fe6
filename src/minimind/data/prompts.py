"""Prompts for reinforcement learning (`data.format=prompt`, what `stage=grpo` reads).

Upstream MiniMind's RLAIF records, read unchanged:

    {"conversations": [{"role": "user", "content": "..."}, {"role": "assistant", "content": ""}], "gt": "..."}

The prompt is the conversation before its last assistant turn (upstream's `RLAIFDataset` renders
`conversations[:-1]`; the turn's content, empty in upstream's files, is ignored), rendered with the
tokenizer's chat template with the assistant's turn opened (`add_generation_prompt=True`): the policy
writes the reply. A record without a final assistant turn is a prompt as it is. `gt` (optional) is the
expected answer, a string, a number or a list of them, for the rewards that check answers
(`minimind.training.rewards.AnswerMatch`).

`data.thinking_ratio` is upstream's option of the same name: the share of prompts rendered with
`open_thinking=True` (minimind-3's template then opens a `<think>` block for the reply; templates
without the option ignore it). Each prompt's draw is fixed by `data.seed` and its id, so a resumed run
sees exactly the prompts it would have seen.

A bad record (no user turn, wrong types, a prompt longer than `data.seq_len`) follows
`data.on_bad_record`: an error naming its file and line, or skipped and counted. Prompt sets are small
(upstream's is a few MB), so they are read once into memory, not into a token cache; the batches then
go through the same `CachedDataset` as every other format (seeded epochs, ranks, exact resume).
"""

from __future__ import annotations

import hashlib
import logging
import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedTokenizerFast

from minimind.data.errors import BadRecords

log = logging.getLogger(__name__)

PROMPT_FIX = ('write {"conversations": [{"role": "user", "content": "..."}, {"role": "assistant", "content": ""}]} '
              '(optionally with "gt": the expected answer)')


def is_prompt_record(obj: Any) -> bool:
    """Whether a parsed record looks like a prompt: a conversation that ends in an empty assistant turn."""
    turns = obj.get("conversations") if isinstance(obj, dict) else None
    return (isinstance(turns, list) and bool(turns) and isinstance(turns[-1], dict)
            and turns[-1].get("role") == "assistant" and not str(turns[-1].get("content") or "").strip())


def _answers(value: Any) -> list[str] | None:
    """`gt` as a list of strings ([] when absent); None when it has a type no reward can compare."""
    if value is None:
        return []
    values = value if isinstance(value, list) else [value]
    if not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in values):
        return None
    return [str(v) for v in values]


def prompt_record(obj: dict[str, Any], where: str, bad: BadRecords) -> dict[str, Any] | None:
    """{"messages": the conversation the reply answers, "answers": the `gt` values}, or None after reporting why not."""
    turns = obj.get("conversations")
    if not isinstance(turns, list) or not all(isinstance(m, dict) for m in turns):
        bad(where, "wrong type", f"'conversations' must be a list of messages, got {type(turns).__name__}", PROMPT_FIX)
        return None
    for i, m in enumerate(turns):
        if not isinstance(m.get("role"), str) or not isinstance(m.get("content", ""), (str, type(None))):
            bad(where, "missing field", f"message {i} needs a string 'role' and 'content' (has {sorted(m)})",
                PROMPT_FIX)
            return None
    messages = turns[:-1] if turns and turns[-1]["role"] == "assistant" else list(turns)
    if not any(m["role"] == "user" for m in messages):
        bad(where, "empty document", "no user turn before the reply, so there is nothing to answer", PROMPT_FIX)
        return None
    answers = _answers(obj.get("gt"))
    if answers is None:
        bad(where, "wrong type", f"'gt' must be a string, a number or a list of them, got {obj.get('gt')!r:.80}",
            'write "gt": "the answer" (or leave it out)')
        return None
    return {"messages": [{**m, "content": m.get("content") or ""} for m in messages], "answers": answers}


def opens_thinking(doc_id: str, thinking_ratio: float, seed: int) -> bool:
    """This prompt's draw of `data.thinking_ratio` (fixed by the seed and its id)."""
    if thinking_ratio <= 0:
        return False
    digest = hashlib.blake2b(f"{seed}\0{doc_id}".encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big")).random() < thinking_ratio


def render_prompt(tokenizer: PreTrainedTokenizerFast, messages: list[dict[str, Any]],
                  open_thinking: bool = False) -> str:
    """The text the policy continues: the chat template with the assistant's turn opened."""
    tools = next((m["tools"] for m in messages if m["role"] == "system" and m.get("tools")), None)
    return tokenizer.apply_chat_template(messages, tools=tools, tokenize=False, add_generation_prompt=True,
                                         open_thinking=open_thinking)


@dataclass
class Prompts:
    """One split's prompts: token ids, and what the rewards read."""

    ids: list[np.ndarray]
    messages: list[list[dict[str, Any]]]
    answers: list[list[str]]

    def __len__(self) -> int:
        return len(self.ids)


def read_prompts(records, tokenizer: PreTrainedTokenizerFast, seq_len: int, thinking_ratio: float, seed: int,
                 bad: BadRecords, is_val) -> dict[str, Prompts]:
    """Render and tokenize every prompt record; {"train": ..., "val": ...} by `is_val(doc_id)`."""
    splits = {name: Prompts([], [], []) for name in ("train", "val")}
    for record in records:
        text = render_prompt(tokenizer, record.value["messages"], opens_thinking(record.doc_id, thinking_ratio, seed))
        ids = tokenizer.encode(text, add_special_tokens=False)
        if len(ids) > seq_len:
            bad(record.where, "too long", f"the prompt has {len(ids)} tokens, more than data.seq_len={seq_len}",
                "raise data.seq_len (the prompt length limit) or shorten the prompt")
            continue
        split = splits["val" if is_val(record.doc_id) else "train"]
        split.ids.append(np.asarray(ids, dtype=np.int64))
        split.messages.append(record.value["messages"])
        split.answers.append(record.value["answers"])
    return splits


class PromptRows:
    """Rows for `CachedDataset`: row i is prompt i; a batch is left-padded to its longest prompt, so every
    prompt's last token sits in the last column, where generation continues it."""

    def __init__(self, prompts: Prompts, seq_len: int, pad_id: int) -> None:
        self.prompts, self.seq_len, self.pad_id = prompts, seq_len, pad_id
        self.count = len(prompts)

    def batch(self, rows: np.ndarray) -> dict[str, Any]:
        """input_ids, attention_mask (B, longest prompt); messages and answers: one entry per prompt."""
        ids = [self.prompts.ids[i] for i in rows]
        width = max(len(x) for x in ids)
        input_ids = torch.full((len(ids), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for row, x in enumerate(ids):
            input_ids[row, width - len(x):] = torch.from_numpy(x)
            mask[row, width - len(x):] = 1
        return {"input_ids": input_ids, "attention_mask": mask,
                "messages": [self.prompts.messages[i] for i in rows],
                "answers": [self.prompts.answers[i] for i in rows]}
