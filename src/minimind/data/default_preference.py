"""The embedded preference set: the embedded SFT conversations, each with a worse last reply beside it.

`data.path=default data.format=dpo` (what `stage=dpo` and `experiment=quickstart_dpo` read): for
each conversation of the embedded SFT set (`default_sft.py`: questions about the Python standard
library answered from its docstrings), one pair with the same prompt (everything before the last
reply),

    user:      What does json.dumps do?
    chosen:    Serialize ``obj`` to a JSON formatted ``str``.          (the SFT set's reply)
    rejected:  one of three, picked by a hash of the name:
               - wrong: another definition's reply of the same form (fluent, but about something else);
               - degenerate: the reply's first words, repeated (what small models fall into);
               - evasive: a non-answer ("I don't know.").

The pairs keep the SFT set's ids, so the train/validation split (by a hash of the id) is the
SFT set's: a definition held out of SFT is held out here too, and a pipeline's DPO validation
asks about definitions no stage trained on. Like the SFT set it depends only on the Python
version (about 4,000 pairs for CPython 3.11) and nothing is downloaded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from typing import Any

from minimind.data import default_sft

VERSION = 1  # bump when the pairs change, so caches built from the old ones are not reused
EVASIVE = ("I don't know.", "I am not sure what that is.", "You should look that up yourself.",
           "That is part of Python.")
REJECTED_KINDS = ("wrong", "degenerate", "evasive")


def _pick(name: str, salt: str, n: int) -> int:
    return int.from_bytes(hashlib.blake2b(f"{salt}\0{name}".encode(), digest_size=8).digest(), "big") % n


def degenerate(answer: str) -> str:
    """The answer's first three words over and over, as long as the answer (at least twice), unfinished."""
    words = answer.rstrip(".!?").split()
    head = words[:3]
    return " ".join((head * (len(words) + 2))[: max(len(words), 2 * len(head))])


def rejected_kind(doc_id: str) -> str:
    """Which worse reply a conversation's pair gets (one of REJECTED_KINDS), fixed by its id."""
    return REJECTED_KINDS[_pick(doc_id, "rejected", len(REJECTED_KINDS))]


def _form(answer: str) -> str:
    """What a reply says: how to call something (`default_sft.CALL`'s wording), or what it is."""
    return next((kind for kind, wording in default_sft.CALL.items() if answer.startswith(wording.split("{")[0])),
                "about")


def pairs(conversations: Iterable[tuple[str, list[dict[str, str]]]] | None = None) \
        -> Iterator[tuple[str, dict[str, Any]]]:
    """(id, {"chosen": [...], "rejected": [...]}) for each (id, conversation) of `conversations`, in order
    (None: the embedded SFT set's)."""
    found = list(default_sft.conversations() if conversations is None else conversations)
    by_form: dict[str, list[str]] = {}  # the last replies of each form, in order
    for _, messages in found:
        by_form.setdefault(_form(messages[-1]["content"]), []).append(messages[-1]["content"])
    position = {form: 0 for form in by_form}
    for doc_id, messages in found:
        *prompt, reply = messages
        answer, form = reply["content"], _form(reply["content"])
        kind = rejected_kind(doc_id)
        if kind == "wrong":  # half-way round the replies of the same form: another module, most likely
            same_form = by_form[form]
            others = (same_form[(position[form] + len(same_form) // 2 + k) % len(same_form)]
                      for k in range(len(same_form)))
            worse = next((other for other in others if other != answer), degenerate(answer))
        elif kind == "degenerate":
            worse = degenerate(answer)
        else:
            worse = EVASIVE[_pick(doc_id, "evasive", len(EVASIVE))]
        position[form] += 1
        yield doc_id, {"chosen": messages, "rejected": [*prompt, {"role": "assistant", "content": worse}]}


def fingerprint() -> str:
    return hashlib.sha256(f"default-dpo v{VERSION} {default_sft.fingerprint()}".encode()).hexdigest()


class DefaultPreferenceSource(default_sft.DefaultSFTSource):
    """`data.path=default` with `data.format=dpo` as a corpus source."""

    what = "embedded preference set"

    def records(self) -> Iterator[tuple[str, dict[str, Any]]]:
        return pairs()

    def fingerprint(self) -> str:
        return fingerprint()
