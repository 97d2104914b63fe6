"""The default tokenizer: trained once from the embedded corpus, then reused.

`<root>/tokenizers/<key>/` (root: `data.cache_dir`, else `minimind.paths.cache_dir()`), where
the key hashes the default corpus's content, the vocabulary size and the recipe, so a new
Python version (new corpus text) or a new recipe gets a new tokenizer. Parallel jobs build
it once (`build_once`); on 2 CPU cores it takes a few seconds.
"""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path

from transformers import PreTrainedTokenizerFast

from minimind.data import default_corpus
from minimind.data.build_once import build_once
from minimind.data.tokenizer import load_tokenizer, train_tokenizer
from minimind.paths import cache_dir

log = logging.getLogger(__name__)

VOCAB_SIZE = 6400  # MiniMind's
RECIPE = 2  # bump when train_tokenizer's recipe (or the chat template it writes) changes


def default_tokenizer_dir(root: Path | None = None, vocab_size: int = VOCAB_SIZE) -> Path:
    """The default tokenizer's directory, trained first if no job has yet."""
    key = hashlib.sha256(f"{default_corpus.fingerprint()}|{vocab_size}|{RECIPE}".encode()).hexdigest()[:16]
    path = (root or cache_dir()) / "tokenizers" / key

    def build(tmp: Path) -> None:
        log.info("training the default tokenizer (vocab %d) on the embedded corpus, once, into %s", vocab_size, path)
        start = time.monotonic()
        train_tokenizer((text for _, text in default_corpus.documents()), vocab_size, tmp)
        log.info("trained the default tokenizer in %.1fs", time.monotonic() - start)

    build_once(path, build)
    return path


def resolve_tokenizer(spec: str | Path | None, root: Path | None = None) -> PreTrainedTokenizerFast:
    """`data.tokenizer`: None or "default" -> the default tokenizer; otherwise a directory."""
    if spec is None or str(spec) in ("", "default"):
        return load_tokenizer(default_tokenizer_dir(root))
    return load_tokenizer(spec)
