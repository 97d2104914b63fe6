"""Where the project keeps its configuration and its shared caches.

Run outputs go where Hydra's `paths.*` config says; these are only the defaults that
code outside a Hydra run (tests, `python -m` tools) falls back to.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONF_DIR = PROJECT_ROOT / "conf"


def cache_dir() -> Path:
    """Shared cache (default tokenizer, tokenized corpora): $MINIMIND_CACHE or ~/.cache/minimind."""
    return Path(os.environ.get("MINIMIND_CACHE", Path.home() / ".cache" / "minimind")).expanduser()
