"""Preference pairs (DPO): upstream MiniMind's `{"chosen": [messages], "rejected": [messages]}` records.

A pair is two conversations with the same prompt (every message before the last assistant reply)
and different last replies: the better one (`chosen`) and the worse (`rejected`). Each side is
checked, rendered and masked exactly as an SFT conversation is (`records.extract`, `encode.Encoder`:
the chat template, trained tokens = the assistant's replies), and the pair is stored in the token
cache as one document, the chosen tokens then the rejected ones, its mask byte holding two bits:
`TRAINED` (an assistant token) and `REJECTED` (the second half).

Reading applies `seq_len` (not part of the cache, so changing it reuses the cache): each side is
cut to `seq_len` tokens, and a batch of B pairs is

    input_ids, labels: (2B, T)  the B chosen rows, then the B rejected rows, padded to the longest (T <= seq_len)
    pair_index: (B,)            each pair's row in its split (what precomputed reference log-probs are looked up by)

Bad pairs follow the data layer's rule (`data.on_bad_record`: stop with where and what to change,
or skip and count):

* a side that is not a conversation with an assistant reply (the SFT checks, per side);
* identical `chosen` and `rejected`: nothing to prefer;
* mismatched prompts (the sides differ before their last assistant reply): refused, not warned
  about, because DPO's implicit reward compares two replies *to the same prompt*; with different
  prompts the difference of log-probabilities mixes in how likely each context makes its reply;
* once `seq_len` is known: a prompt so long that within `seq_len` nothing of a reply is left, or
  the two sides are the same within `seq_len` (their difference lies beyond it): nothing to compare.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from minimind.data.errors import BadRecords
from minimind.data.packing import IGNORE, labels_for, pad_row, to_batch
from minimind.data.records import Record, detect_format, extract

TRAINED, REJECTED = 1, 2  # the bits of a pair's mask byte
SIDES = ("chosen", "rejected")
PAIR_FIX = ('write {"chosen": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "<the better '
            'reply>"}], "rejected": [<the same prompt>, {"role": "assistant", "content": "<the worse reply>"}]}')


@dataclass(frozen=True)
class Pair:
    chosen: list[dict[str, Any]]
    rejected: list[dict[str, Any]]


def pair_settings_problems(packing: bool | None, cache: bool | None) -> list[str]:
    """Data settings preference pairs cannot be read with."""
    problems = []
    if packing:
        problems.append("data.packing=true cannot pack preference pairs (each pair is compared as a whole, one "
                        "row per side): set data.packing=false")
    if cache is False:
        problems.append("data.cache=false: preference pairs are read from the token cache (their reference "
                        "log-probabilities are keyed by it): set data.cache=true (a hub dataset is then read once)")
    return problems


def _prompt(conversation: list[dict[str, Any]]) -> list[dict[str, Any]]:
    last = max(i for i, m in enumerate(conversation) if m["role"] == "assistant")
    return conversation[:last]


def extract_pair(obj: Any, where: str, bad: BadRecords) -> Pair | None:
    """The record's two conversations, checked, or None after reporting why not."""
    if not isinstance(obj, dict):
        bad(where, "wrong type", f"expected a JSON object, got {type(obj).__name__}", PAIR_FIX)
        return None
    missing = [side for side in SIDES if side not in obj]
    if missing:
        other = detect_format(obj)
        hint = f"; this looks like {other} data: set data.format={other}" if other not in (None, "dpo") else ""
        bad(where, "missing field", f"no {' or '.join(repr(m) for m in missing)} field (keys: {sorted(obj)}){hint}",
            PAIR_FIX)
        return None
    sides = []
    for side in SIDES:
        value = obj[side]
        if not isinstance(value, list):
            bad(where, "wrong type", f"'{side}' must be a list of messages, got {type(value).__name__}", PAIR_FIX)
            return None

        def about(where_: str, kind: str, detail: str, fix: str, side: str = side) -> None:
            bad(where_, kind, f"in '{side}': {detail}", PAIR_FIX)

        conversation = extract({"conversations": value}, "sft", where, about)  # the SFT checks, per side
        if conversation is None:
            return None
        sides.append(conversation)
    chosen, rejected = sides
    if chosen == rejected:
        bad(where, "identical pair", "'chosen' and 'rejected' are the same conversation, so there is nothing to "
            "prefer", "give 'rejected' the worse reply, or remove the record")
        return None
    if _prompt(chosen) != _prompt(rejected):
        bad(where, "mismatched prompts", "'chosen' and 'rejected' differ before their last assistant reply, so they "
            "are not two replies to one prompt", "give both sides the same messages up to the last assistant reply")
        return None
    return Pair(chosen, rejected)


def encode_pairs(encode_conversations: Callable[[list[Record]], list[tuple[np.ndarray, np.ndarray]]],
                 records: list[Record]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each pair as one document: (chosen ids ++ rejected ids, mask bytes of TRAINED | REJECTED).
    `encode_conversations` is the SFT encoding (`Encoder(tokenizer, "sft", options).encode`); both sides
    keep the pair's id, so what `ChatOptions` draws for it (a system prompt) is the same on both."""
    sides = [replace(r, value=conversation) for r in records for conversation in (r.value.chosen, r.value.rejected)]
    flat = encode_conversations(sides)
    out = []
    for (chosen, chosen_mask), (rejected, rejected_mask) in zip(flat[0::2], flat[1::2]):
        mask = np.concatenate([chosen_mask.astype(np.uint8) * TRAINED,
                               rejected_mask.astype(np.uint8) * TRAINED | REJECTED])
        out.append((np.concatenate([chosen, rejected]), mask))
    return out


class PairRows:
    """Row i is a usable pair of a split: its chosen and its rejected conversation, each cut to `seq_len`.

    Pairs with nothing to compare within `seq_len` are reported to `bad` (which raises under
    `on_bad_record=error`) and left out. `where(i)` names pair i for messages; `key` names the rows
    (token cache, split, seq_len), for what is computed from them and cached."""

    def __init__(self, tokens: np.ndarray, mask: np.ndarray, offsets: np.ndarray, seq_len: int, pad_id: int,
                 bad: BadRecords, where: Callable[[int], str], key: str) -> None:
        self.tokens, self.mask, self.offsets = tokens, mask, offsets
        self.seq_len, self.pad_id, self.key = seq_len, pad_id, key
        keep = []
        for i in range(len(offsets) - 1):
            problem = self._problem(i)
            if problem is None:
                keep.append(i)
            else:
                bad(where(i), "nothing to compare", problem, "raise data.seq_len, or shorten the pair's prompt")
        self.pairs = np.asarray(keep, dtype=np.int64)
        self.count = len(keep)

    def halves(self, i: int) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
        """Pair i's whole (ids, mask) of the chosen and of the rejected conversation."""
        start, stop = self.offsets[i], self.offsets[i + 1]
        ids, mask = self.tokens[start:stop], np.asarray(self.mask[start:stop])
        middle = int(np.argmax(mask & REJECTED))
        return (ids[:middle], mask[:middle] & TRAINED), (ids[middle:], mask[middle:] & TRAINED)

    def sides(self, i: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Pair i's (ids, labels) of the chosen and of the rejected conversation, each cut to seq_len."""
        return [(ids[:self.seq_len], labels_for(ids[:self.seq_len], mask[:self.seq_len]))
                for ids, mask in self.halves(i)]

    def _problem(self, i: int) -> str | None:
        (chosen, chosen_mask), (rejected, _) = self.halves(i)
        empty = [side for side, (_, labels) in zip(SIDES, self.sides(i)) if not (labels[1:] != IGNORE).any()]
        if empty:
            return (f"the pair's prompt is {int(np.argmax(chosen_mask))} tokens long, so within data.seq_len="
                    f"{self.seq_len} nothing of the {' and '.join(empty)} reply is left")
        kept = chosen[:self.seq_len], rejected[:self.seq_len]
        if len(kept[0]) == len(kept[1]) and (kept[0] == kept[1]).all():
            return (f"'chosen' and 'rejected' are the same in their first {self.seq_len} tokens, all that "
                    "data.seq_len keeps of them")
        return None

    def batch(self, rows: np.ndarray) -> dict[str, torch.Tensor]:
        pairs = [self.sides(self.pairs[r]) for r in rows]
        longest = max(len(ids) for pair in pairs for ids, _ in pair)
        stacked = np.stack([pad_row(ids, labels, longest, self.pad_id) for side in (0, 1) for ids, labels in
                            (pair[side] for pair in pairs)])
        batch = to_batch(stacked)
        batch["pair_index"] = torch.as_tensor(np.asarray(rows, dtype=np.int64))
        return batch

