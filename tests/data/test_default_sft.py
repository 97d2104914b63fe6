"""The embedded SFT set: made from the stdlib's own docstrings, deterministic, valid, with a held-out split."""

from __future__ import annotations

import ast

import pytest

from minimind.data import default_corpus, default_sft
from minimind.data.corpus import Corpus
from minimind.data.errors import BadRecords
from minimind.data.records import extract, is_val

MODULES = ("json/__init__.py", "shlex.py", "fnmatch.py", "textwrap.py", "string.py")


@pytest.fixture
def few_modules(monkeypatch):
    """The set made from a few stdlib modules only (the whole stdlib takes tens of seconds to parse)."""
    files = [default_corpus.stdlib_root() / m for m in MODULES]
    monkeypatch.setattr(default_corpus, "module_files", lambda: files)


def test_conversations_are_deterministic_valid_and_from_the_docstrings(few_modules):
    convs = list(default_sft.conversations())
    assert convs == list(default_sft.conversations())  # same ids, same wording, same order
    ids = [doc_id for doc_id, _ in convs]
    assert len(ids) == len(set(ids)) > 20 and all(i.startswith("default-sft/") for i in ids)
    bad = BadRecords()  # raises on any invalid record
    for doc_id, messages in convs:
        assert extract({"conversations": messages}, "sft", doc_id, bad) == messages
        assert [m["role"] for m in messages] in (["user", "assistant"], ["user", "assistant"] * 2)
    by_id = dict(convs)
    quote = by_id["default-sft/shlex.quote"]
    assert "shlex.quote" in quote[0]["content"]
    answers = [m["content"] for m in quote if m["role"] == "assistant"]
    assert "Return a shell-escaped version of the string *s*." in answers or "Call it as shlex.quote(s)." in answers
    assert all("_" != name.split("/")[1].split(".")[-1][0] for name in ids)  # public definitions only


def test_answers_are_first_sentences_and_signatures():
    assert default_sft.summary("Return the sum.  Longer text follows.\n\nMore.", "f") == "Return the sum."
    assert default_sft.summary("reduce(function, iterable[, initial]) -> value\n\nApply a function of two "
                               "arguments cumulatively.", "reduce") == "Apply a function of two arguments cumulatively."
    assert default_sft.summary("Show an info message", "showinfo") == "Show an info message."
    assert default_sft.summary("Hi.", "f") is None  # too short to be an answer
    tree = ast.parse("def f(a, b=1, *, c):\n    pass\nclass K:\n    def __init__(self, x, y=2):\n        pass\n")
    assert default_sft.call("m.f", tree.body[0]) == "m.f(a, b=1, *, c)"
    assert default_sft.call("m.K", tree.body[1]) == "m.K(x, y=2)"


def test_default_path_with_sft_format_is_the_embedded_set(few_modules):
    corpus = Corpus("default", "sft")
    assert corpus.resolve_format("auto") == "sft" and not corpus.streaming
    records = list(corpus.records("sft", BadRecords()))
    assert [r.doc_id for r in records] == [doc_id for doc_id, _ in default_sft.conversations()]
    held_out = [r for r in records if is_val(r.doc_id, 0.05)]
    assert 0 < len(held_out) < len(records) / 5  # whole definitions are held out, by a hash of their name
    assert Corpus("default").resolve_format("auto") == "pretrain"  # the pretraining corpus is unchanged
    assert corpus.fingerprint() != Corpus("default").fingerprint()
