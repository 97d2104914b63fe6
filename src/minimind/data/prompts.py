"""Prompts for reinforcement learning (`data.format=prompt`, what `stage=grpo` reads).

Upstream MiniMind's RLAIF records, read unchanged:

    {"conversations": [{"role": "user", "content": "..."}, {"role": "assistant", "content": ""}], "gt": "..."}

`minimind.data.records` checks them (the messages as SFT's are checked): the prompt is the conversation
before its last assistant turn (upstream's `RLAIFDataset` renders `conversations[:-1]`; the turn's
content, empty in upstream's files, is ignored), and `gt` (optional) is the expected answer, a string,
a number or a list of them, for the rewards that check answers (`minimind.training.rewards.AnswerMatch`).
Here the prompt is rendered as SFT renders a conversation (`minimind.data.encode.render`, with the same
`data.add_system_ratio` augmentation upstream's `pre_processing_chat` applies), with the assistant's turn
opened (`add_generation_prompt=True`): the policy writes the reply.

`data.thinking_ratio` is upstream's option of the same name: the share of prompts rendered with
`open_thinking=True` (minimind-3's template then opens a `<think>` block for the reply; templates
without the option ignore it). Each prompt's draws are fixed by `data.seed` and its id, so a resumed run
sees exactly the prompts it would have seen.

A prompt longer than `data.seq_len` follows `data.on_bad_record`, like any bad record: an error naming
its file and line, or skipped and counted. Prompt sets are small (upstream's is a few MB), so they are
read once into memory, not into a token cache; the batches then go through the same `CachedDataset` as
every other format (seeded epochs, ranks, exact resume).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedTokenizerFast

from minimind.data.encode import ChatOptions, render
from minimind.data.errors import BadRecords


def opens_thinking(doc_id: str, thinking_ratio: float, options: ChatOptions) -> bool:
    """This prompt's draw of `data.thinking_ratio` (fixed by the seed and its id)."""
    return thinking_ratio > 0 and options.rng(f"{doc_id}\0thinking").random() < thinking_ratio


def render_prompt(tokenizer: PreTrainedTokenizerFast, messages: list[dict[str, Any]], options: ChatOptions = ChatOptions(),
                  doc_id: str = "", open_thinking: bool = False) -> str:
    """The text the policy continues: the conversation rendered with the assistant's turn opened."""
    return render(tokenizer, messages, options, doc_id, add_generation_prompt=True, open_thinking=open_thinking)


@dataclass
class Prompts:
    """One split's prompts: token ids, and what the rewards read."""

    ids: list[np.ndarray]
    messages: list[list[dict[str, Any]]]
    answers: list[list[str]]

    def __len__(self) -> int:
        return len(self.ids)


def read_prompts(records, tokenizer: PreTrainedTokenizerFast, seq_len: int, options: ChatOptions,
                 thinking_ratio: float, bad: BadRecords, is_val) -> dict[str, Prompts]:
    """Render and tokenize every prompt record; {"train": ..., "val": ...} by `is_val(doc_id)`."""
    splits = {name: Prompts([], [], []) for name in ("train", "val")}
    for record in records:
        text = render_prompt(tokenizer, record.value["messages"], options, record.doc_id,
                             opens_thinking(record.doc_id, thinking_ratio, options))
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
