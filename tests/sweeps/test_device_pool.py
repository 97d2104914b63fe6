"""The device pool on simulated GPUs (named by UUID, as the pool names real ones): concurrent jobs
never share one, all jobs run, multi-GPU jobs take theirs together, locks are per user."""

import os
import time
from pathlib import Path

import pytest
from joblib import Parallel, delayed

from minimind.errors import ConfigurationError
from minimind.sweeps.device_pool import lease_devices, private_dir
from minimind.sweeps.resolvers import user_lock_dir

GPUS = ["GPU-4b1f0c2e-aaaa", "GPU-9d3e5a71-bbbb", "GPU-0c7d2f44-cccc"]


def job(lock_dir: str, devices: list[str], count: int, index: int) -> tuple[int, list[str], float, float]:
    with lease_devices(lock_dir, devices, count, poll_seconds=0.02) as taken:
        start = time.monotonic()
        time.sleep(0.3)
        return index, [devices[i] for i in taken], start, time.monotonic()


def assert_no_gpu_held_twice(results):
    for a in results:
        for b in results:
            if a[0] < b[0] and set(a[1]) & set(b[1]):
                assert a[3] <= b[2] or b[3] <= a[2], f"jobs {a[0]} and {b[0]} overlapped on {set(a[1]) & set(b[1])}"


def test_parallel_jobs_never_share_a_device_and_all_run(tmp_path: Path):
    # 3 GPUs, 4 worker processes, 9 jobs: a worker must wait for a device to free.
    results = Parallel(n_jobs=4, backend="loky")(delayed(job)(str(tmp_path), GPUS, 1, i) for i in range(9))
    assert sorted(r[0] for r in results) == list(range(9))
    assert_no_gpu_held_twice(results)
    peak = max(sum(1 for r in results if r[2] <= t < r[3]) for t in (r[2] for r in results))
    assert peak == 3, "every device is used at once"


def test_two_sweeps_that_see_the_gpus_in_different_orders_share_the_locks(tmp_path: Path):
    # CUDA_VISIBLE_DEVICES=0,1,2 in one shell and 2,1,0 in another: index 0 is a different GPU in each.
    orders = [GPUS, GPUS[::-1]]
    results = Parallel(n_jobs=4, backend="loky")(delayed(job)(str(tmp_path), orders[i % 2], 1, i) for i in range(8))
    assert sorted(r[0] for r in results) == list(range(8))
    assert_no_gpu_held_twice(results)


def test_multi_gpu_jobs_take_their_gpus_together(tmp_path: Path):
    # Jobs of 2 GPUs beside jobs of 1, on 3 GPUs: nobody holds half of what it needs.
    results = Parallel(n_jobs=3, backend="loky")(
        delayed(job)(str(tmp_path), GPUS, 2 if i % 2 else 1, i) for i in range(6))
    assert sorted(len(r[1]) for r in results) == [1, 1, 1, 2, 2, 2]
    assert_no_gpu_held_twice(results)


def test_a_job_cannot_ask_for_more_devices_than_the_pool_has(tmp_path: Path):
    with pytest.raises(ConfigurationError, match="needs 4 device"):
        with lease_devices(tmp_path, GPUS, 4):
            pass


def test_a_dead_jobs_device_is_free_again(tmp_path: Path):
    import multiprocessing as mp
    import signal

    ready = mp.get_context("spawn").Event()
    holder = mp.get_context("spawn").Process(target=_hold_forever, args=(str(tmp_path), ready))
    holder.start()
    ready.wait(60)
    os.kill(holder.pid, signal.SIGKILL)
    holder.join()
    with lease_devices(tmp_path, GPUS[:1], poll_seconds=0.02) as taken:
        assert taken == [0]


def _hold_forever(lock_dir, ready):
    with lease_devices(lock_dir, GPUS[:1]):
        ready.set()
        time.sleep(600)


def test_locks_are_in_a_private_folder_of_this_user(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    folder = Path(user_lock_dir())
    assert folder.parent == tmp_path and folder.name == f"minimind-device-locks-{os.getuid()}"
    with lease_devices(folder, GPUS[:1]):
        pass
    assert folder.stat().st_mode & 0o777 == 0o700
    assert (folder / f"{GPUS[0]}.lock").is_file()


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to give a folder to another user")
def test_a_lock_folder_of_another_user_is_refused_with_a_message(tmp_path: Path):
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o755)
    os.chown(theirs, 65534, 65534)
    with pytest.raises(ConfigurationError, match="not a folder of yours: set MINIMIND_DEVICE_LOCKS"):
        private_dir(theirs)
