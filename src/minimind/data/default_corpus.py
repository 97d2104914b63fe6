"""The embedded default corpus: English text every Python installation already has.

No download, and no copied text in this repository: the documents are read at run time from
the running interpreter's standard library,

* the reference-manual topics that `help()` shows (`pydoc_data.topics`), one document each;
* for each stdlib module, one document made of its docstrings in source order, each under
  a header line (`class json.JSONDecoder(object)`, `def json.dumps(obj, *, skipkeys=False, ...)`).

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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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


def _docstrings(body: list[ast.stmt], prefix: str) -> Iterator[str]:
    """`header\\n\\ndocstring` for each documented class/function, classes recursively."""
    for node in body:
        if not isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        name = f"{prefix}{node.name}"
        doc = ast.get_docstring(node)
        if doc:
            kind = "class" if isinstance(node, ast.ClassDef) else "def"
            yield f"{kind} {name}{_signature(node)}\n\n{doc}"
        if isinstance(node, ast.ClassDef):
            yield from _docstrings(node.body, f"{name}.")


def module_text(path: Path) -> str:
    """One module's docstrings as a document ('' when it has none or does not parse)."""
    try:
        tree = ast.parse(path.read_bytes())
    except (SyntaxError, ValueError):
        return ""
    name = module_name(path)
    parts = [doc] if (doc := ast.get_docstring(tree)) else []
    parts += _docstrings(tree.body, f"{name}.")
    return f"Module {name}\n\n" + "\n\n".join(parts) if parts else ""


def documents() -> Iterator[tuple[str, str]]:
    """(document id, text) pairs in a fixed order."""
    from pydoc_data.topics import topics

    for key in sorted(topics):
        if topics[key].strip():
            yield f"pydoc_topics/{key}", topics[key].strip()
    for path in module_files():
        if text := module_text(path):
            yield f"stdlib/{module_name(path)}", text


def fingerprint() -> str:
    """A hash of everything the documents are made from (cheap: no parsing)."""
    from pydoc_data import topics

    h = hashlib.sha256(f"default-corpus v{VERSION} python {sys.version_info[:3]}".encode())
    h.update(Path(topics.__file__).read_bytes())
    for path in module_files():
        h.update(str(path.relative_to(stdlib_root())).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


class EmbeddedSource:
    """A set made at run time from the running Python (nothing downloaded) as a corpus source: `data.path=default`."""

    name = "default"
    streaming = False

    def __init__(self, label: str, documents: Callable[[], Iterator[tuple[str, Any]]], fingerprint: Callable[[], str],
                 text_only: bool) -> None:
        self.label, self._documents, self._fingerprint, self.text_only = label, documents, fingerprint, text_only

    def fingerprint(self) -> str:
        return self._fingerprint()

    def raw(self, bad: object) -> Iterator[tuple[str, str, Any, None]]:
        for doc_id, payload in self._documents():
            yield doc_id, f"{self.label}: {doc_id}", payload, None


class DefaultSource(EmbeddedSource):
    """`data.path=default` as a pretraining corpus."""

    def __init__(self) -> None:
        super().__init__("default corpus", documents, fingerprint, text_only=True)
