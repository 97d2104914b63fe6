"""The data of `minimind_stdlib_docs`: which documentation belongs to this function?

Made from the embedded corpus (`minimind.data.default_corpus`), at load time, from the running
Python's standard library: no file to download or ship, and the same items on every machine with
the same Python version. Only modules in the validation split of the default `data.val_fraction`
(0.05) are used, so a model trained on the default corpus has never seen these docstrings (any
larger fraction holds them out too: the split keeps a document whose hash is below the fraction).

For each documented class or function of such a module with a distinct docstring, the item's
context is its header line and its four choices are the first paragraph (at most 200 characters,
cut at a word) of its own docstring and of three others from the same module, picked and shuffled
by a generator seeded with the item's id. Python 3.11.7 gives 383 items from 23 modules.

    python -m minimind.eval_tasks.stdlib_docs                 # how many items, and the first one
    python -m minimind.eval_tasks.stdlib_docs --out items.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from minimind.data import default_corpus
from minimind.data.records import is_val

VAL_FRACTION = 0.05  # the data config's default: these modules are validation documents
CHOICES = 4
MAX_CHARS = 200
MIN_CHARS = 20  # shorter first paragraphs ("Return x.") say too little to tell apart


def first_paragraph(doc: str, max_chars: int = MAX_CHARS) -> str:
    """The docstring's first paragraph on one line, cut at a word to at most `max_chars`."""
    text = " ".join(doc.split("\n\n")[0].split())
    if len(text) <= max_chars:
        return text
    return text[:max_chars].rsplit(" ", 1)[0]


def module_items(path: Path) -> list[dict]:
    """The items of one module (none when it has fewer than four usable definitions)."""
    name = default_corpus.module_name(path)
    entries: list[tuple[str, str, str]] = []  # (qualified name, header, first paragraph)
    seen_names, seen_docs = set(), set()
    for header, doc in default_corpus.documented(path):
        qualified = header.split("(")[0].split(" ", 1)[1]  # "def calendar.isleap(year)" -> "calendar.isleap"
        paragraph = first_paragraph(doc)
        if len(paragraph) < MIN_CHARS or qualified in seen_names or paragraph in seen_docs:
            continue  # choices must differ, and each name must have one answer
        seen_names.add(qualified)
        seen_docs.add(paragraph)
        entries.append((qualified, header, paragraph))
    if len(entries) < CHOICES:
        return []
    items = []
    for i, (qualified, header, paragraph) in enumerate(entries):
        rng = random.Random(qualified)  # a str seed is hashed with SHA-512: the same on every run and machine
        others = rng.sample([p for j, (_, _, p) in enumerate(entries) if j != i], CHOICES - 1)
        choices = others + [paragraph]
        rng.shuffle(choices)
        items.append({"id": qualified, "module": name, "header": header, "choices": choices,
                      "answer": choices.index(paragraph)})
    return items


def build_items() -> list[dict]:
    """Every item, in the corpus's module order."""
    items = []
    for path in default_corpus.module_files():
        if is_val(default_corpus.module_doc_id(path), VAL_FRACTION):
            items += module_items(path)
    return items


def load(**_: object):
    """lm_eval's `custom_dataset`: the items as a one-split DatasetDict (lm_eval passes the task's
    metadata as keyword arguments; none is needed)."""
    import datasets

    return datasets.DatasetDict({"test": datasets.Dataset.from_list(build_items())})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="write the items as JSON lines here")
    args = parser.parse_args(argv)
    items = build_items()
    if args.out:
        from minimind.files import atomic_write_text

        atomic_write_text(args.out, "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items))
        print(f"wrote {len(items)} items to {args.out}")
    else:
        print(f"{len(items)} items from {len({i['module'] for i in items})} modules; the first:")
        print(json.dumps(items[0], indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
