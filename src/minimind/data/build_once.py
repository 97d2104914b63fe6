"""Build a cache directory exactly once, even when several jobs start at the same moment.

The first job to take the file lock builds into a private temporary directory and renames
it into place (atomic on one filesystem); the others wait on the lock, then find the
finished directory. A directory that exists is therefore always complete.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock

from minimind.files import publish_dir


def build_once(final: Path, build: Callable[[Path], None]) -> bool:
    """Make sure `final` exists, calling `build(tmp_dir)` if no one has; True if this call built it."""
    if final.is_dir():
        return False
    final.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(final) + ".lock"):
        if final.is_dir():  # another job built it while we waited
            return False
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
        try:
            build(tmp)
            publish_dir(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return True
