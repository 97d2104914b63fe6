"""Writing files so that a crash never leaves half of one.

Every write goes to a temporary file (or directory) beside the target, is flushed to
disk, and is renamed over the target: a reader sees the old version or the new one,
never a truncated one. Checkpoints, `summary.json`, `metrics.csv` trimming, reports,
exports and caches all write through here.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def atomic_writer(path: str | Path, mode: str = "w", **open_kwargs: Any) -> Iterator[IO]:
    """`with atomic_writer(path) as f:` write to f; `path` is replaced only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **open_kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private (0600); give it a normal file's mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> Path:
    with atomic_writer(path, "w", encoding="utf-8") as f:
        f.write(text)
    return Path(path)


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    import torch

    with atomic_writer(path, "wb") as f:
        torch.save(obj, f)
    return Path(path)


class AtomicDir:
    """`with AtomicDir(out) as tmp:` write into tmp; on success tmp replaces `out`, on error nothing changes.

    overwrite: replace an existing non-empty `out` (otherwise that is refused before anything is written).
    """

    def __init__(self, out: str | Path, overwrite: bool = False, what: str = "out"):
        from minimind.errors import ToolError

        self.out = Path(out).expanduser().resolve()
        if self.out.exists() and (not self.out.is_dir() or any(self.out.iterdir())) and not overwrite:
            raise ToolError(f"{what}={self.out} exists and is not empty: choose another {what}= or pass overwrite=true")

    def __enter__(self) -> Path:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.tmp-", dir=self.out.parent))
        return self.tmp

    def __exit__(self, kind, error, tb) -> None:
        if error is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        publish_dir(self.tmp, self.out)


def publish_dir(tmp: Path, out: Path) -> None:
    """Move the finished directory `tmp` to `out` (replacing it), with normal permissions."""
    mask = _umask()
    for path in [tmp, *tmp.rglob("*")]:  # mkdtemp/mkstemp make them private (0700/0600)
        os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~mask)
    old = None
    if out.exists():  # move the old one aside first: a rename never merges directories
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
