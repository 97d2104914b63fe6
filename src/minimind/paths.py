"""Where the project keeps its configuration and its shared caches.

The configuration ships inside the package (`minimind/conf/`, Hydra's `pkg://minimind.conf`),
so an installed wheel finds it wherever it is run from; nothing here depends on the
repository layout or the current directory. Run outputs go where Hydra's `paths.*` config
says; `cache_dir()` is the default for code outside a Hydra run (tests, `python -m` tools).
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

CONF_PACKAGE = "minimind.conf"
CONF_SEARCH_PATH = f"pkg://{CONF_PACKAGE}"  # what every Hydra entry point gives as config_path
CONF_DIR = Path(str(files(CONF_PACKAGE)))  # the same files on disk (presets, tests)


def cache_dir() -> Path:
    """Shared cache (default tokenizer, tokenized corpora): $MINIMIND_CACHE or ~/.cache/minimind."""
    return Path(os.environ.get("MINIMIND_CACHE", Path.home() / ".cache" / "minimind")).expanduser()
