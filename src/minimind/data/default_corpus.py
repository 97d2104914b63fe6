"""The embedded default corpus: English text every Python installation already has.

No download, and no copied text in this repository: the documents are read at run time from
the running interpreter's standard library,

* the reference-manual topics that `help()` shows (`pydoc_data.topics`), one document each;
* for each stdlib module, one document made of its docstrings in source order, each under
  a header line (`class json.JSONDecoder(object)`, `def json.dumps(obj, *, skipkeys=False, ...)`).

`default_sft.py` makes the embedded SFT conversations from the same definitions.

The documents and their order depend only on the Python version (about 2.5 MB, 700 documents
for CPython 3.11), so the train/validation split (by hash of the document id) and the caches
built from it are the same on every machine running that version.
"""

from __future__ import annotations

import ast
import hashlib
import os
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

# Bump when the extraction below changes, so caches built from the old text are not reused.
VERSION = 1
SKIP_DIRS = {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__"}


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def module_files() -> list[Path]:
    """The stdlib's own `.py` files (not tests, not installed packages), in a fixed order."""
    files = []
    for folder, dirs, names in os.walk(stdlib_root()):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS]
        files += [Path(folder, n) for n in names if n.endswith(".py")]
    return sorted(files)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(stdlib_root()).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _signature(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> str:
    if isinstance(node, ast.ClassDef):
        bases = ", ".join(ast.unparse(b) for b in node.bases)
        return f"({bases})" if bases else ""
    return f"({ast.unparse(node.args)})"


def definitions(body: list[ast.stmt], prefix: str) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef |
                                                                      ast.ClassDef]]:
    """(qualified name, node) of each class and function in `body`, classes' members recursively, in
    source order (what the corpus documents, and what the embedded SFT set asks about)."""
    for node in body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            name = f"{prefix}{node.name}"
            yield name, node
            if isinstance(node, ast.ClassDef):
                yield from definitions(node.body, f"{name}.")


def parse_module(path: Path) -> ast.Module | None:
    """A stdlib module's syntax tree (None when it does not parse)."""
    try:
        return ast.parse(path.read_bytes())
    except (SyntaxError, ValueError):
        return None


def documented(path: Path) -> list[tuple[str, str]]:
    """A module's documented classes and functions as (header line, docstring), in source order:
    ("def json.dumps(obj, *, skipkeys=False, ...)", "Serialize ``obj`` to a JSON formatted ``str``...")."""
    tree = parse_module(path)
    if tree is None:
        return []
    return [(f"{'class' if isinstance(node, ast.ClassDef) else 'def'} {name}{_signature(node)}", doc)
            for name, node in definitions(tree.body, f"{module_name(path)}.")
            if (doc := ast.get_docstring(node))]


def module_text(path: Path) -> str:
    """One module's docstrings as a document ('' when it has none or does not parse)."""
    tree = parse_module(path)
    if tree is None:
        return ""
    parts = [doc] if (doc := ast.get_docstring(tree)) else []
    parts += [f"{header}\n\n{doc}" for header, doc in documented(path)]
    return f"Module {module_name(path)}\n\n" + "\n\n".join(parts) if parts else ""


def module_doc_id(path: Path) -> str:
    """A module's document id: what the train/validation split hashes."""
    return f"stdlib/{module_name(path)}"


def documents() -> Iterator[tuple[str, str]]:
    """(document id, text) pairs in a fixed order."""
    from pydoc_data.topics import topics

    for key in sorted(topics):
        if topics[key].strip():
            yield f"pydoc_topics/{key}", topics[key].strip()
    for path in module_files():
        if text := module_text(path):
            yield module_doc_id(path), text


def fingerprint() -> str:
    """A hash of everything the documents are made from (cheap: no parsing)."""
    from pydoc_data import topics

    h = hashlib.sha256(f"default-corpus v{VERSION} python {sys.version_info[:3]}".encode())
    h.update(Path(topics.__file__).read_bytes())
    for path in module_files():
        h.update(str(path.relative_to(stdlib_root())).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


class DefaultSource:
    """`data.path=default` as a corpus source."""

    name = "default"
    streaming = False
    text_only = True

    def fingerprint(self) -> str:
        return fingerprint()

    def raw(self, bad: object) -> Iterator[tuple[str, str, str, None]]:
        for doc_id, text in documents():
            yield doc_id, f"default corpus: {doc_id}", text, None
