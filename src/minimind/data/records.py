"""What a document is once read: a `Record`, checked against its format.

Three formats, as in upstream MiniMind's JSONL files:

* `pretrain`: `{"text": "..."}`, a non-empty string;
* `sft`: `{"conversations": [{"role": "user", "content": "..."}, {"role": "assistant", ...}]}`,
  with at least one assistant message (the only text that is trained on);
* `dpo`: `{"chosen": [messages], "rejected": [messages]}`, a preference pair of two such
  conversations with the same prompt (`preference.py`).

Records also decide the train/validation split: by a hash of the document id, so the split
is the same in every run, on every machine, and whatever the order of reading.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from minimind.data.errors import BadRecords, DataError

FORMATS = ("auto", "pretrain", "sft", "dpo")
FIELD = {"pretrain": "text", "sft": "conversations", "dpo": "chosen"}


@dataclass(frozen=True, slots=True)
class Record:
    index: int  # position among all raw records of the corpus (what sharding divides)
    doc_id: str  # stable name, e.g. "books/a.jsonl:17" (what the split hashes)
    where: str  # for messages: "/abs/path/books/a.jsonl:17"
    value: Any  # the text (pretrain), the conversation (sft), or a `preference.Pair` (dpo)


def is_val(doc_id: str, val_fraction: float) -> bool:
    """Whether a document belongs to the validation split (a fixed pseudo-random choice)."""
    h = int.from_bytes(hashlib.blake2b(doc_id.encode(), digest_size=8).digest(), "big")
    return h < val_fraction * 2**64


def detect_format(obj: Any) -> str | None:
    """`pretrain`, `sft` or `dpo` from the first parsed record, None if it cannot tell."""
    if isinstance(obj, str):
        return "pretrain"
    if isinstance(obj, dict):
        for fmt, field in FIELD.items():
            if field in obj:
                return fmt
    return None


def _conversation(value: Any, where: str, bad: BadRecords) -> list[dict[str, str]] | None:
    fix = 'write "conversations": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]'
    if not isinstance(value, list) or not all(isinstance(m, dict) for m in value):
        bad(where, "wrong type", f"'conversations' must be a list of messages, got {type(value).__name__}", fix)
        return None
    if not value:
        bad(where, "empty document", "the conversation has no messages", fix)
        return None
    for i, m in enumerate(value):
        if not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            bad(where, "missing field", f"message {i} needs string 'role' and 'content' (has {sorted(m)})", fix)
            return None
    if not any(m["role"] == "assistant" and m["content"].strip() for m in value):
        bad(where, "empty document", "no non-empty assistant message, so nothing to train on", fix)
        return None
    return value


def extract(obj: Any, fmt: str, where: str, bad: BadRecords) -> str | list[dict[str, str]] | None:
    """The record's text (pretrain) or conversation (sft), or None after reporting why not."""
    if obj is None:  # the reader already reported it
        return None
    if isinstance(obj, str):
        if fmt != "pretrain":
            raise DataError(f"{where}: plain text can only be pretraining data, but data.format={fmt}")
        value: Any = obj
    elif fmt == "dpo":
        from minimind.data.preference import extract_pair  # (it checks each side with this module)

        return extract_pair(obj, where, bad)
    elif not isinstance(obj, dict):
        bad(where, "wrong type", f"expected a JSON object, got {type(obj).__name__}", 'write {"text": "..."} per line')
        return None
    elif (field := FIELD[fmt]) not in obj:
        other = detect_format(obj)
        hint = f"; this looks like {other} data: set data.format={other}" if other else ""
        bad(where, "missing field", f"no '{field}' field (keys: {sorted(obj)}){hint}", f"data.format={fmt} needs '{field}'")
        return None
    elif fmt == "sft":
        return _conversation(obj[field], where, bad)
    else:
        value = obj[field]
    if not isinstance(value, str):
        bad(where, "wrong type", f"'text' must be a string, got {type(value).__name__}", 'write {"text": "..."}')
        return None
    if not value.strip():
        bad(where, "empty document", "the text is empty", "remove the record or give it text")
        return None
    return value
