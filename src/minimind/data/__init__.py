"""The data layer: corpora, tokenizers, token caches, packing and the Lightning DataModule.

Start at `datamodule.py`; `python -m minimind.data.train_tokenizer` trains a tokenizer.
Names are imported on first use, so the tokenizer command does not pay for Lightning.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DataError": "minimind.data.errors",
    "MiniMindDataModule": "minimind.data.datamodule",
    "default_tokenizer_dir": "minimind.data.default_tokenizer",
    "resolve_tokenizer": "minimind.data.default_tokenizer",
    "load_tokenizer": "minimind.data.tokenizer",
    "train_tokenizer": "minimind.data.tokenizer",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
