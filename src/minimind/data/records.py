"""What a document is once read: a `Record`, checked against its format.

The formats of upstream MiniMind's JSONL files:

* `pretrain`: `{"text": "..."}`, a non-empty string;
* `sft`: `{"conversations": [{"role": "user", "content": "..."}, {"role": "assistant", ...}]}`,
  with at least one assistant message (the only text that is trained on). Messages may also
  carry upstream's other fields: `reasoning_content` (an assistant's thinking, rendered as a
  `<think>` block), `tools` (on the system message: the functions on offer) and `tool_calls`
  (on an assistant message: the calls it makes), each a list or that list as a JSON string, as
  upstream's files have them; `tool` messages hold the calls' results;
* `prompt`: prompts for reinforcement learning (upstream's RLAIF files), conversations whose last
  assistant turn is empty, with an optional expected answer `gt` (`minimind.data.prompts`);
* `dpo`: `{"chosen": [messages], "rejected": [messages]}`, a preference pair of two such
  conversations with the same prompt (`preference.py`).

Records also decide the train/validation split: by a hash of the document id, so the split
is the same in every run, on every machine, and whatever the order of reading.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from minimind.data.errors import BadRecords, DataError

FORMATS = ("auto", "pretrain", "sft", "prompt", "dpo")
FIELD = {"pretrain": "text", "sft": "conversations", "prompt": "conversations", "dpo": "chosen"}


@dataclass(frozen=True, slots=True)
class Record:
    index: int  # position among all raw records of the corpus (what sharding divides)
    doc_id: str  # stable name, e.g. "books/a.jsonl:17" (what the split hashes)
    where: str  # for messages: "/abs/path/books/a.jsonl:17"
    value: Any  # the text (pretrain), the conversation (sft; messages normalised by `extract`), a prompt
    # ({"messages": the conversation before the reply, "answers": the `gt` values}), a `preference.Pair`


def is_val(doc_id: str, val_fraction: float) -> bool:
    """Whether a document belongs to the validation split (a fixed pseudo-random choice)."""
    h = int.from_bytes(hashlib.blake2b(doc_id.encode(), digest_size=8).digest(), "big")
    return h < val_fraction * 2**64


def detect_format(obj: Any) -> str | None:
    """`pretrain`, `sft`, `prompt` or `dpo` from the first parsed record, None if it cannot tell."""
    if isinstance(obj, str):
        return "pretrain"
    if _is_prompt(obj):
        return "prompt"
    if isinstance(obj, dict):
        for fmt, field in FIELD.items():
            if field in obj:
                return fmt
    return None


ROLES = ("system", "user", "assistant", "tool")
SFT_FIX = 'write "conversations": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]'


class BadMessage(Exception):
    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind, self.detail = kind, detail


def _json_list(value: Any, name: str, i: int) -> list[dict[str, Any]]:
    """A `tools` / `tool_calls` field: a list, or a JSON string of one (upstream's files store strings)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise BadMessage("malformed JSON", f"message {i}: '{name}' is not valid JSON ({e.msg}, column {e.colno})")
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise BadMessage("wrong type", f"message {i}: '{name}' must be a list of objects (or a JSON string of "
                         f"one), got {type(value).__name__}")
    return value


def _tool_calls(value: Any, i: int) -> list[dict[str, Any]]:
    calls = _json_list(value, "tool_calls", i)
    for call in calls:
        function = call.get("function", call)  # OpenAI's {"function": {"name", "arguments"}} or flat
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise BadMessage("wrong type", f"message {i}: each tool call needs a string 'name' "
                             "(or 'function': {'name': ...})")
    return calls


def _message(m: dict[str, Any], i: int) -> dict[str, Any]:
    """One message checked and normalised: role, content, and those optional fields that are set."""
    role, content = m.get("role"), m.get("content")
    if not isinstance(role, str) or (content is None and not m.get("tool_calls")):
        raise BadMessage("missing field", f"message {i} needs string 'role' and 'content' (has {sorted(m)})")
    if role not in ROLES:
        raise BadMessage("unknown role", f"message {i} has role {role!r}; the roles are {', '.join(ROLES)}")
    out: dict[str, Any] = {"role": role, "content": "" if content is None else content}
    if not isinstance(out["content"], str):
        raise BadMessage("wrong type", f"message {i}: 'content' must be a string, got {type(content).__name__}")
    if m.get("reasoning_content") is not None:
        if not isinstance(m["reasoning_content"], str):
            raise BadMessage("wrong type", f"message {i}: 'reasoning_content' must be a string, got "
                             f"{type(m['reasoning_content']).__name__}")
        out["reasoning_content"] = m["reasoning_content"]
    if m.get("tool_calls") is not None:
        if role != "assistant":
            raise BadMessage("wrong type", f"message {i} ({role}) has 'tool_calls'; only assistants call tools")
        out["tool_calls"] = _tool_calls(m["tool_calls"], i)
    if m.get("tools") is not None:
        if role != "system":
            raise BadMessage("wrong type", f"message {i} ({role}) has 'tools'; the tools on offer belong on the "
                             "system message")
        out["tools"] = _json_list(m["tools"], "tools", i)
    return out


def _trainable(m: dict[str, Any]) -> bool:
    return m["role"] == "assistant" and bool(m["content"].strip() or m.get("reasoning_content", "").strip()
                                             or m.get("tool_calls"))


def _conversation(value: Any, where: str, bad: BadRecords) -> list[dict[str, Any]] | None:
    if not isinstance(value, list) or not all(isinstance(m, dict) for m in value):
        bad(where, "wrong type", f"'conversations' must be a list of messages, got {type(value).__name__}", SFT_FIX)
        return None
    if not value:
        bad(where, "empty document", "the conversation has no messages", SFT_FIX)
        return None
    try:
        messages = [_message(m, i) for i, m in enumerate(value)]
    except BadMessage as e:
        bad(where, e.kind, e.detail, SFT_FIX)
        return None
    if not any(_trainable(m) for m in messages):
        bad(where, "empty document", "no non-empty assistant message, so nothing to train on", SFT_FIX)
        return None
    return messages


def _is_prompt(obj: Any) -> bool:
    """Whether a parsed record looks like a prompt: a conversation that ends in an empty assistant turn (no text,
    thinking or tool calls: an SFT reply that only calls a tool is not empty)."""
    turns = obj.get("conversations") if isinstance(obj, dict) else None
    last = turns[-1] if isinstance(turns, list) and turns and isinstance(turns[-1], dict) else {}
    return last.get("role") == "assistant" and not any(str(last.get(k) or "").strip()
                                                       for k in ("content", "reasoning_content", "tool_calls"))


PROMPT_FIX = ('write {"conversations": [{"role": "user", "content": "..."}, {"role": "assistant", "content": ""}]} '
              '(optionally with "gt": the expected answer)')


def _answers(value: Any) -> list[str] | None:
    """`gt` as a list of strings ([] when absent); None when it has a type no reward can compare."""
    values = [] if value is None else value if isinstance(value, list) else [value]
    if not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in values):
        return None
    return [str(v) for v in values]


def _prompt(obj: dict[str, Any], where: str, bad: BadRecords) -> dict[str, Any] | None:
    """An RLAIF record: the conversation before its last assistant turn (whose content, empty in upstream's
    files, is ignored; a conversation without one is a prompt as it is) and its `gt` values."""
    turns = obj["conversations"]
    if not isinstance(turns, list) or not all(isinstance(m, dict) for m in turns):
        bad(where, "wrong type", f"'conversations' must be a list of messages, got {type(turns).__name__}", PROMPT_FIX)
        return None
    if turns and turns[-1].get("role") == "assistant":
        turns = turns[:-1]
    try:
        messages = [_message(m, i) for i, m in enumerate(turns)]
    except BadMessage as e:
        bad(where, e.kind, e.detail, PROMPT_FIX)
        return None
    if not any(m["role"] == "user" for m in messages):
        bad(where, "empty document", "no user turn before the reply, so there is nothing to answer", PROMPT_FIX)
        return None
    answers = _answers(obj.get("gt"))
    if answers is None:
        bad(where, "wrong type", f"'gt' must be a string, a number or a list of them, got {obj.get('gt')!r:.80}",
            'write "gt": "the answer" (or leave it out)')
        return None
    return {"messages": messages, "answers": answers}


def extract(obj: Any, fmt: str, where: str, bad: BadRecords) -> str | list[dict[str, Any]] | None:
    """The record's text (pretrain), conversation (sft) or prompt, or None after reporting why not."""
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
    elif fmt == "prompt":
        return _prompt(obj, where, bad)
    else:
        value = obj[field]
    if not isinstance(value, str):
        bad(where, "wrong type", f"'text' must be a string, got {type(value).__name__}", 'write {"text": "..."}')
        return None
    if not value.strip():
        bad(where, "empty document", "the text is empty", "remove the record or give it text")
        return None
    return value
