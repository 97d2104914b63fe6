"""The device pool on a simulated set of GPUs: concurrent jobs never share one, all jobs run."""

import time
from pathlib import Path

from joblib import Parallel, delayed

from minimind.sweeps.device_pool import lease_device


def job(lock_dir: str, size: int, index: int) -> tuple[int, int, float, float]:
    with lease_device(lock_dir, size, poll_seconds=0.02) as device:
        start = time.monotonic()
        time.sleep(0.3)
        return index, device, start, time.monotonic()


def test_parallel_jobs_never_share_a_device_and_all_run(tmp_path: Path):
    # 3 "GPUs", 4 worker processes, 9 jobs: a worker must wait for a device to free.
    results = Parallel(n_jobs=4, backend="loky")(delayed(job)(str(tmp_path), 3, i) for i in range(9))
    assert sorted(r[0] for r in results) == list(range(9))
    assert {r[1] for r in results} <= {0, 1, 2}
    for a in results:
        for b in results:
            if a[0] < b[0] and a[1] == b[1]:
                assert a[3] <= b[2] or b[3] <= a[2], f"jobs {a[0]} and {b[0]} overlapped on device {a[1]}"
    peak = max(sum(1 for r in results if r[2] <= t < r[3]) for t in (r[2] for r in results))
    assert peak == 3, "every device is used at once"


def test_a_dead_jobs_device_is_free_again(tmp_path: Path):
    import multiprocessing as mp
    import os
    import signal

    ready = mp.get_context("spawn").Event()
    holder = mp.get_context("spawn").Process(target=_hold_forever, args=(str(tmp_path), ready))
    holder.start()
    ready.wait(30)
    os.kill(holder.pid, signal.SIGKILL)
    holder.join()
    with lease_device(tmp_path, 1, poll_seconds=0.02) as device:
        assert device == 0


def _hold_forever(lock_dir, ready):
    with lease_device(lock_dir, 1):
        ready.set()
        time.sleep(600)
