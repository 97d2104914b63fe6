"""The embedded prompt set: the embedded SFT set's questions, with answers a reward can check.

`data.path=default data.format=prompt` (what `experiment=quickstart_grpo` reads): for each conversation
of the embedded SFT set (`default_sft.py`: questions about the standard library the embedded corpus is
made from), its first question as a prompt in upstream's RLAIF format,

    {"conversations": [{"role": "user", "content": "How do I call json.dumps?"},
                       {"role": "assistant", "content": ""}], "gt": ["json", "dumps"]}

`gt` is the name asked about, as its dotted parts: a reply that answers the question names it, and
`AnswerMatch(mode=contains)` scores the share of the parts the reply names (1 for the whole name), so a
reply that gets the module right but not the function earns part of the reward. (Measured: the
quickstart-size model does not learn to name what it is asked about in the demo's 200 steps; its
reward rises through the other rewards.) Each prompt keeps its conversation's id, so the
train/validation split is the SFT set's: a definition held out of SFT is held out here too, and
validation asks about what the model never saw.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

from minimind.data import default_sft

VERSION = 2  # bump when the prompts change


def prompts() -> Iterator[tuple[str, dict[str, Any]]]:
    """(id, RLAIF record) pairs in a fixed order, one per conversation of the embedded SFT set."""
    for doc_id, messages in default_sft.conversations():
        name = doc_id.split("/", 1)[1]
        yield doc_id, {"conversations": [messages[0], {"role": "assistant", "content": ""}], "gt": name.split(".")}


def fingerprint() -> str:
    return hashlib.sha256(f"default-prompts v{VERSION} {default_sft.fingerprint()}".encode()).hexdigest()


class DefaultPromptSource(default_sft.DefaultSFTSource):
    """`data.path=default` with `data.format=prompt` as a corpus source."""

    what = "embedded prompt set"

    def records(self) -> Iterator[tuple[str, dict[str, Any]]]:
        return prompts()

    def fingerprint(self) -> str:
        return fingerprint()
