"""The embedded SFT set: conversations about the Python standard library, made from its docstrings.

`data.path=default data.format=sft` (what `stage=sft` and `experiment=quickstart_sft` read):
for each public, documented function, class and method of the stdlib the embedded pretraining
corpus (`default_corpus.py`) is made from, a conversation of one or two turns,

    user: What does json.dumps do?
    assistant: Serialize ``obj`` to a JSON formatted ``str``.
    user: How do I call it?
    assistant: Call it as json.dumps(obj, *, skipkeys=False, ensure_ascii=True, ...).

answered with the first sentence of its docstring and its signature, in a wording picked per
definition. No download and no copied text: the answers come from the running interpreter's
own source, and the set depends only on the Python version (about 4,000 conversations for
CPython 3.11), so its train/validation split (by hash of the id, `default-sft/<name>`: a
held-out function is held out with every question about it) is the same on every machine.
"""

from __future__ import annotations

import ast
import hashlib
import random
import re
from collections.abc import Iterator
from typing import Any

from minimind.data import default_corpus

VERSION = 1  # bump when the conversations change, so caches built from the old ones are not reused
MAX_ANSWER = 300  # characters of a docstring's first sentence
MAX_ARGS = 120  # characters of a signature worth asking about

WHAT = {
    "def": ("What does {name} do?", "What is {name} for?", "Explain {name}.", "What does the function {name} do?"),
    "method": ("What does {name} do?", "What is the method {name} for?", "Explain {name}."),
    "class": ("What is {name}?", "What is the class {name} for?", "Explain {name}."),
}
HOW = {
    "def": ("How do I call {name}?", "What arguments does {name} take?", "Show me the signature of {name}."),
    "class": ("How do I create an instance of {name}?", "How do I construct {name}?",
              "What does the {name} constructor take?"),
}
FOLLOW_UP = {"def": ("How do I call it?", "What arguments does it take?"),
             "class": ("How do I create one?", "What does its constructor take?")}
CALL = {"def": "Call it as {call}.", "class": "Create one with {call}."}


def _public(name: str) -> bool:
    return not any(part.startswith("_") for part in name.split("."))


def summary(doc: str, short_name: str) -> str | None:
    """The first sentence of a docstring's description, on one line (None if there is no usable one).

    A first paragraph that only restates the signature (`reduce(function, iterable[, initial]) -> value`,
    as C-accelerated modules write them) is skipped for the next."""
    for paragraph in doc.split("\n\n"):
        text = " ".join(paragraph.split())
        if not text or text.startswith(f"{short_name}(") or "->" in text[:80]:
            continue
        sentence = re.match(r"(.+?[.!?])(?=\s+[A-Z(`'\"]|$)", text)
        text = sentence.group(1) if sentence else text
        if not 12 <= len(text) <= MAX_ANSWER or text.endswith((":", "e.g.", "i.e.")):
            return None
        return text if text[-1] in ".!?" else text + "."
    return None


def _arguments(node: ast.FunctionDef | ast.AsyncFunctionDef, drop_self: bool) -> str:
    args = node.args
    if drop_self and (args.posonlyargs or args.args):
        args = ast.arguments(**{**args.__dict__, "posonlyargs": args.posonlyargs[1:],
                                "args": args.args if args.posonlyargs else args.args[1:]})
    return ast.unparse(args)


def call(name: str, node: ast.AST) -> str | None:
    """How to call a function, or create an instance of a class (from its `__init__`); None if unknown."""
    if isinstance(node, ast.ClassDef):
        init = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
        args = _arguments(init, drop_self=True) if init is not None else None
    else:
        args = _arguments(node, drop_self=False)
    return f"{name}({args})" if args is not None and len(args) <= MAX_ARGS else None


def conversation(name: str, kind: str, about: str, how: str | None) -> list[dict[str, str]]:
    """One or two turns about a definition; the wording is picked by a hash of its name."""
    rng = random.Random(int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big"))
    turns = [(rng.choice(WHAT[kind]).format(name=name), about)]
    if how is not None:
        shape = rng.random()
        answer = CALL[kind].format(call=how)
        if shape < 0.35:
            turns = [(rng.choice(HOW[kind]).format(name=name), answer)]
        elif shape < 0.7:
            turns.append((rng.choice(FOLLOW_UP[kind]), answer))
    return [{"role": role, "content": text} for q, a in turns for role, text in (("user", q), ("assistant", a))]


def conversations() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """(id, conversation) pairs in a fixed order, one per public documented definition."""
    seen = set()
    for path in default_corpus.module_files():
        module = default_corpus.module_name(path)
        tree = default_corpus.parse_module(path) if _public(module) else None
        if tree is None:
            continue
        for name, node in default_corpus.definitions(tree.body, f"{module}."):
            doc = ast.get_docstring(node)
            if not doc or not _public(name) or name in seen:
                continue
            about = summary(doc, node.name)
            if about is None:
                continue
            seen.add(name)
            kind = "class" if isinstance(node, ast.ClassDef) else "method" if name.count(".") > module.count(".") + 1 \
                else "def"
            yield f"default-sft/{name}", conversation(name, kind, about, call(name, node) if kind != "method" else None)


def fingerprint() -> str:
    return hashlib.sha256(f"default-sft v{VERSION} {default_corpus.fingerprint()}".encode()).hexdigest()


class DefaultSFTSource:
    """`data.path=default` with `data.format=sft` as a corpus source. The other embedded record sets made
    from it (prompts, preference pairs) subclass it with their own `records`, `fingerprint` and `what`."""

    name = "default"
    streaming = False
    text_only = False
    what = "embedded SFT set"

    def records(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """(document id, JSON record as upstream's files hold it), in a fixed order."""
        for doc_id, messages in conversations():
            yield doc_id, {"conversations": messages}

    def fingerprint(self) -> str:
        return fingerprint()

    def raw(self, bad: object) -> Iterator[tuple[str, str, dict[str, Any], None]]:
        for doc_id, record in self.records():
            yield doc_id, f"{self.what}: {doc_id}", record, None
