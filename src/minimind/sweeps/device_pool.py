"""Give each parallel sweep job GPUs of its own.

Every GPU has a lock file named after its UUID, the one name that does not depend on
`CUDA_VISIBLE_DEVICES` (two sweeps that see the same GPU under different indices still
take the same lock). A job takes the GPUs it needs together (`flock`, exclusive, all or
none, so two multi-GPU jobs never hold half of what each needs) and holds them until it
ends; the next waiting job starts as soon as enough free. The operating system drops a
lock when its holder dies, however it dies, so a crashed job never keeps a GPU "busy".

The locks live in a folder of the user's own (`${minimind.lock_dir:}`, created 0700):
a folder shared between users would be created by the first with its umask and refuse
the second. Sweeps of different users on one machine are not coordinated (that is what
a scheduler such as SLURM is for).
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import socket
import stat
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

from minimind.errors import ConfigurationError

log = logging.getLogger(__name__)


def gpu_uuids() -> list[str]:
    """The GPUs this process sees, in CUDA's order, as `GPU-<uuid>` (what CUDA_VISIBLE_DEVICES accepts)."""
    import torch

    if not torch.cuda.is_available():
        return []
    return [f"GPU-{torch.cuda.get_device_properties(i).uuid}" for i in range(torch.cuda.device_count())]


def private_dir(path: str | Path) -> Path:
    """`path` created 0700 for this user; refused with a message if it belongs to someone else."""
    path = Path(path).expanduser()
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.lstat()
    except OSError as error:
        raise ConfigurationError(f"cannot use {path} for the device-pool locks ({error.strerror}): set "
                                 "MINIMIND_DEVICE_LOCKS to a folder of your own") from None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise ConfigurationError(f"{path} (device-pool locks) is not a folder of yours: set MINIMIND_DEVICE_LOCKS "
                                 "to a folder of your own")
    return path


@contextmanager
def lease_devices(lock_dir: str | Path, devices: Sequence[str], count: int = 1,
                  poll_seconds: float = 0.5) -> Iterator[list[int]]:
    """Block until `count` of `devices` (stable ids: GPU UUIDs) are free together; yield their
    positions in `devices` while holding them."""
    if not 1 <= count <= len(devices):
        raise ConfigurationError(f"a job needs {count} device(s) but the pool has {len(devices)}: lower "
                                 f"trainer.devices (at most {len(devices)})")
    lock_dir = private_dir(lock_dir)
    waited = False
    while True:
        with ExitStack() as held:
            taken: list[int] = []
            for index, device in enumerate(devices):
                if len(taken) < count and _try_lock(held, lock_dir / f"{_file_name(device)}.lock"):
                    taken.append(index)
            if len(taken) == count:
                log.info("job %d holds %s", os.getpid(), ", ".join(devices[i] for i in taken))
                yield taken
                return
        if not waited:
            log.info("waiting for %d free device(s) of %d (locks in %s)", count, len(devices), lock_dir)
            waited = True
        time.sleep(poll_seconds)


def _try_lock(held: ExitStack, path: Path) -> bool:
    """Lock `path` without waiting; on success the lock is released when `held` closes."""
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return False
    held.callback(handle.close)
    held.callback(fcntl.flock, handle, fcntl.LOCK_UN)
    handle.seek(0)
    handle.truncate()
    handle.write(f"{socket.gethostname()} {os.getpid()}\n")
    handle.flush()
    return True


def _file_name(device: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", device)
