"""The embedded prompt set: questions about the standard library, with answers a reward can check.

`data.path=default data.format=prompt` (what `experiment=quickstart_grpo` reads): for each public,
documented function and class of the stdlib the embedded pretraining corpus (`default_corpus.py`) is
made from, one prompt in upstream's RLAIF format,

    {"conversations": [{"role": "user", "content": "How do I call json.dumps?"},
                       {"role": "assistant", "content": ""}], "gt": "json.dumps"}

asked the way the embedded SFT set asks (what does it do, how is it called), worded per definition by a
hash of its name. `gt` is the name asked about: a reply that answers the question names it
(`AnswerMatch(mode=contains)` checks it). No download and no copied text: the set depends only on the
Python version (about 3,000 prompts for CPython 3.11), so its train/validation split (by hash of the id,
`default-prompts/<name>`) is the same on every machine.
"""

from __future__ import annotations

import ast
import hashlib
import random
from collections.abc import Iterator
from typing import Any

from minimind.data import default_corpus

VERSION = 1  # bump when the prompts change

QUESTIONS = {
    "def": ("What does {name} do?", "What is {name} for?", "How do I call {name}?", "What arguments does {name} take?"),
    "class": ("What is {name}?", "What is the class {name} for?", "How do I create an instance of {name}?"),
}


def _public(name: str) -> bool:
    return not any(part.startswith("_") for part in name.split("."))


def definitions() -> Iterator[tuple[str, str]]:
    """(qualified name, `def` or `class`) of each public documented module-level function and class, in a fixed order."""
    for path in default_corpus.module_files():
        module = default_corpus.module_name(path)
        if not _public(module):
            continue
        try:
            tree = ast.parse(path.read_bytes())
        except (SyntaxError, ValueError):
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and _public(node.name) \
                    and ast.get_docstring(node):
                yield f"{module}.{node.name}", "class" if isinstance(node, ast.ClassDef) else "def"


def prompt(name: str, kind: str) -> dict[str, Any]:
    """One RLAIF record about a definition; the question is picked by a hash of its name."""
    rng = random.Random(int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big"))
    question = rng.choice(QUESTIONS[kind]).format(name=name)
    return {"conversations": [{"role": "user", "content": question}, {"role": "assistant", "content": ""}],
            "gt": name}


def fingerprint() -> str:
    return hashlib.sha256(f"default-prompts v{VERSION} {default_corpus.fingerprint()}".encode()).hexdigest()


class DefaultPromptSource:
    """`data.path=default` with `data.format=prompt` as a corpus source."""

    name = "default"
    streaming = False
    text_only = False

    def fingerprint(self) -> str:
        return fingerprint()

    def raw(self, bad: object) -> Iterator[tuple[str, str, dict[str, Any], None]]:
        seen = set()
        for name, kind in definitions():
            if name not in seen:
                seen.add(name)
                yield f"default-prompts/{name}", f"embedded prompt set: {name}", prompt(name, kind), None
