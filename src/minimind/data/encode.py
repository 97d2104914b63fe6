"""Records -> token ids, plus which tokens are trained on.

Pretraining text is trained on everywhere and ends with `<|endoftext|>`, the document
separator. A conversation is rendered with the tokenizer's chat template and only the
assistant's replies are trained on: from after `<|im_start|>assistant\\n` through the
closing `<|im_end|>`, as upstream MiniMind's `SFTDataset` does. The spans are found on the
rendered text and mapped to tokens through their character offsets, so this works for any
ChatML template (MiniMind's own, with or without a default system prompt or `<think>` block).
"""

from __future__ import annotations

import numpy as np
from transformers import PreTrainedTokenizerFast

from minimind.data.tokenizer import EOS, IM_END, IM_START

ASSISTANT = f"{IM_START}assistant\n"


def assistant_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the assistant replies in a rendered conversation, `<|im_end|>` included."""
    spans, start = [], text.find(ASSISTANT)
    while start >= 0:
        begin = start + len(ASSISTANT)
        end = text.find(IM_END, begin)
        end = len(text) if end < 0 else end + len(IM_END)
        spans.append((begin, end))
        start = text.find(ASSISTANT, end)
    return spans


class Encoder:
    """Encodes batches of record values (faster than one at a time) for one data format."""

    def __init__(self, tokenizer: PreTrainedTokenizerFast, fmt: str) -> None:
        self.tokenizer = tokenizer
        self.fmt = fmt
        self.eos_id = tokenizer.convert_tokens_to_ids(EOS)

    def encode(self, values: list) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """(ids int32, trained mask or None for "all") per value."""
        if self.fmt == "dpo":  # two conversations per record, each encoded as below (minimind.data.preference)
            from minimind.data.preference import encode_pairs

            return encode_pairs(Encoder(self.tokenizer, "sft").encode, values)
        backend = self.tokenizer.backend_tokenizer
        if self.fmt == "pretrain":
            encodings = backend.encode_batch_fast(values, add_special_tokens=False)
            return [(np.array([*e.ids, self.eos_id], dtype=np.int32), None) for e in encodings]
        texts = [self.tokenizer.apply_chat_template(v, tokenize=False) for v in values]
        out = []
        for text, e in zip(texts, backend.encode_batch(texts, add_special_tokens=False)):
            starts = np.fromiter((s for s, _ in e.offsets), dtype=np.int64, count=len(e.offsets))
            mask = np.zeros(len(starts), dtype=bool)
            for begin, end in assistant_spans(text):
                mask |= (starts >= begin) & (starts < end)
            out.append((np.array(e.ids, dtype=np.int32), mask))
        return out
