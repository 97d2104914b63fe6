"""Who reads what: every (rank, DataLoader worker) pair gets its own disjoint share.

A rank's batches are dealt to its workers in turn (batch j to worker j % num_workers), the
order in which the DataLoader collects them, so the batch sequence a rank sees does not
depend on how many workers it has.
"""

from __future__ import annotations

from torch.utils.data import get_worker_info


def worker_slot() -> tuple[int, int]:
    """(this worker's id, number of workers); (0, 1) outside a worker process."""
    info = get_worker_info()
    return (info.id, info.num_workers) if info is not None else (0, 1)


def check_rank(rank: int, world_size: int) -> None:
    if not 0 <= rank < world_size:
        raise ValueError(f"rank={rank} must be in [0, world_size={world_size})")
