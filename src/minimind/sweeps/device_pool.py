"""Give each parallel sweep job a device of its own.

Every device has a lock file; a job takes the first one it can lock (`flock`, exclusive)
and holds it until it ends, so two concurrent jobs never share a device and the next
waiting job starts as soon as one frees. The operating system drops the lock when a job's
process dies, however it dies, so a crashed job never keeps a GPU "busy".
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

log = logging.getLogger(__name__)


@contextmanager
def lease_device(lock_dir: str | Path, size: int, poll_seconds: float = 0.5) -> Iterator[int]:
    """Block until one of devices 0..size-1 is free; yield its index while holding it."""
    if size < 1:
        raise ValueError(f"a device pool needs at least one device, got size={size}")
    lock_dir = Path(lock_dir)
    lock_dir.mkdir(parents=True, exist_ok=True)
    waited = False
    while True:
        for index in range(size):
            handle = open(lock_dir / f"device-{index}.lock", "a+")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            try:
                handle.seek(0)
                handle.truncate()
                handle.write(f"{os.getpid()}\n")
                handle.flush()
                log.info("job %d holds device %d", os.getpid(), index)
                yield index
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
                handle.close()
            return
        if not waited:
            log.info("all %d devices in %s are busy; waiting for one to free", size, lock_dir)
            waited = True
        time.sleep(poll_seconds)
