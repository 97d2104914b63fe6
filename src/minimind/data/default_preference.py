"""The embedded preference set: two answers to a question about the Python standard library, one better.

`data.path=default data.format=dpo` (what `stage=dpo` and `experiment=quickstart_dpo` read): for each
public, documented top-level function and class of the stdlib the embedded pretraining corpus
(`default_corpus.py`) is made from, one pair

    user:      What does json.dumps do?
    chosen:    Serialize ``obj`` to a JSON formatted ``str``.
    rejected:  one of three, picked by a hash of the name:
               - wrong: another definition's answer (fluent, but about something else);
               - degenerate: the answer's first words, repeated (what small models fall into);
               - evasive: a non-answer ("I don't know.").

The answer is the first sentence of the definition's docstring. No download and no copied text:
everything comes from the running interpreter's own source, and the set depends only on the
Python version (2,108 pairs for CPython 3.11), so its train/validation split (by a hash of the id,
`default-dpo/<name>`) is the same on every machine.
"""

from __future__ import annotations

import ast
import hashlib
import re
from collections.abc import Iterator
from typing import Any

from minimind.data import default_corpus
from minimind.data.default_corpus import EmbeddedSource

VERSION = 1  # bump when the pairs change, so caches built from the old ones are not reused
MIN_ANSWER, MAX_ANSWER = 12, 200  # characters of a usable first sentence
QUESTIONS = {
    "def": ("What does {name} do?", "What is {name} for?", "Explain {name}."),
    "class": ("What is {name}?", "What is the class {name} for?", "Explain {name}."),
}
EVASIVE = ("I don't know.", "I am not sure what that is.", "You should look that up yourself.",
           "That is part of Python.")
REJECTED_KINDS = ("wrong", "degenerate", "evasive")


def _pick(name: str, salt: str, n: int) -> int:
    return int.from_bytes(hashlib.blake2b(f"{salt}\0{name}".encode(), digest_size=8).digest(), "big") % n


def first_sentence(doc: str, short_name: str) -> str | None:
    """The first sentence of a docstring, on one line; None when there is no usable one (a signature
    line such as `reduce(function, iterable[, initial]) -> value`, a marker such as `**DEPRECATED**`,
    fewer than three words, too long)."""
    text = " ".join(doc.split("\n\n")[0].split())
    if text.startswith(f"{short_name}(") or "->" in text[:80]:
        return None
    match = re.match(r"(.+?[.!?])(?=\s|$)", text)
    text = match.group(1) if match else text
    usable = MIN_ANSWER <= len(text) <= MAX_ANSWER and text[0].isalpha() and len(text.split()) >= 3
    return text if usable else None


def definitions() -> list[tuple[str, str, str]]:
    """(qualified name, "def" or "class", answer) of each public documented top-level definition, in a fixed order."""
    found = []
    for path in default_corpus.module_files():
        module = default_corpus.module_name(path)
        if any(part.startswith("_") for part in module.split(".")):
            continue
        try:
            tree = ast.parse(path.read_bytes())
        except (SyntaxError, ValueError):
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
                answer = first_sentence(ast.get_docstring(node) or "", node.name)
                if answer is not None:
                    found.append((f"{module}.{node.name}", "class" if isinstance(node, ast.ClassDef) else "def",
                                  answer))
    return found


def degenerate(answer: str) -> str:
    """The answer's first three words over and over, as long as the answer (at least twice), unfinished."""
    words = answer.rstrip(".!?").split()
    head = words[:3]
    return " ".join((head * (len(words) + 2))[: max(len(words), 2 * len(head))])


def rejected_kind(name: str) -> str:
    """Which worse reply a definition's pair gets (one of REJECTED_KINDS), fixed by its name."""
    return REJECTED_KINDS[_pick(name, "rejected", len(REJECTED_KINDS))]


def pairs() -> Iterator[tuple[str, dict[str, Any]]]:
    """(id, {"chosen": [...], "rejected": [...]}) for each definition, in a fixed order."""
    found = definitions()
    for i, (name, kind, answer) in enumerate(found):
        question = QUESTIONS[kind][_pick(name, "question", len(QUESTIONS[kind]))].format(name=name)
        kind_of_worse = rejected_kind(name)
        if kind_of_worse == "wrong":  # half-way round the list: another module, most likely; never the same text
            others = (found[(i + len(found) // 2 + k) % len(found)][2] for k in range(len(found)))
            worse = next((other for other in others if other != answer), degenerate(answer))
        elif kind_of_worse == "degenerate":
            worse = degenerate(answer)
        else:
            worse = EVASIVE[_pick(name, "evasive", len(EVASIVE))]
        prompt = [{"role": "user", "content": question}]
        yield f"default-dpo/{name}", {"chosen": [*prompt, {"role": "assistant", "content": answer}],
                                      "rejected": [*prompt, {"role": "assistant", "content": worse}]}


def fingerprint() -> str:
    return hashlib.sha256(f"default-dpo v{VERSION} {default_corpus.fingerprint()}".encode()).hexdigest()


class DefaultPreferenceSource(EmbeddedSource):
    """`data.path=default` with `data.format=dpo` as a corpus source."""

    def __init__(self) -> None:
        super().__init__("embedded preference set", pairs, fingerprint, text_only=False)
