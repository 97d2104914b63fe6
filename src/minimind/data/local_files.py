"""A local `data.path`: one file, a directory (searched recursively) or a glob pattern."""

from __future__ import annotations

import glob
import hashlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from minimind.data.errors import BadRecords, DataError
from minimind.data.readers import READERS

log = logging.getLogger(__name__)


def _match(path: str) -> tuple[list[Path], Path]:
    """The files `path` names, in sorted order, and the folder their ids are relative to."""
    p = Path(path).expanduser()
    if glob.has_magic(path):
        files = sorted(Path(f) for f in glob.glob(str(p), recursive=True) if Path(f).is_file())
        root = Path(os.path.commonpath([f.parent for f in files])) if files else p.parent
    elif p.is_dir():
        files, root = sorted(f for f in p.rglob("*") if f.is_file()), p
    elif p.is_file():
        files, root = [p], p.parent
    else:
        raise DataError(f"data.path={path!r}: no such file or directory")
    if not files:
        raise DataError(f"data.path={path!r} matches no files")
    return files, root


class LocalFiles:
    """Files read in sorted order; a file's format comes from its extension."""

    streaming = False

    def __init__(self, path: str) -> None:
        files, self.root = _match(path)
        self.name = path
        self.files = [f for f in files if f.suffix in READERS]
        ignored = [f for f in files if f.suffix not in READERS]
        if not self.files:
            raise DataError(
                f"data.path={path!r}: none of its {len(files)} files ends in {', '.join(READERS)} (e.g. {files[0]})"
            )
        if ignored:
            log.warning("data.path=%s: ignoring %d files with other extensions, e.g. %s", path, len(ignored), ignored[0])
        self.text_only = all(f.suffix == ".txt" for f in self.files)

    def fingerprint(self) -> str:
        """Paths, sizes and modification times: any edit gives a new cache."""
        h = hashlib.sha256()
        for f in self.files:
            st = f.stat()
            h.update(f"{f.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return h.hexdigest()

    def raw(self, bad: BadRecords) -> Iterator[tuple[str, str, Any, Any]]:
        for f in self.files:
            reader = READERS[f.suffix]
            rel = f.relative_to(self.root).as_posix()
            for number, payload in reader.items(f, bad):
                yield f"{rel}:{number}", f"{f}:{number}", payload, reader.parse
