"""Build a cache directory exactly once, even when several jobs start at the same moment.

The first job to take the file lock builds into a private temporary directory and renames
it into place (atomic on one filesystem); the others wait on the lock, then find the
finished directory. A directory that exists is therefore always complete.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock


def build_once(final: Path, build: Callable[[Path], None]) -> bool:
    """Make sure `final` exists, calling `build(tmp_dir)` if no one has; True if this call built it."""
    if final.is_dir():
        return False
    final.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(final) + ".lock"):
        if final.is_dir():  # another job built it while we waited
            return False
        tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            build(tmp)
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return True
