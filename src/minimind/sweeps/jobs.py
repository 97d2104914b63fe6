"""One job of a sweep: skip it if done, resume it if interrupted, and never let it stop the others.

Re-running a sweep with the same `hydra.sweep.dir` picks up where it stopped: a job whose
`summary.json` says completed is not rerun, a job with checkpoints continues from its last
one, and a job that fails records its error in `summary.json` and hands the next job the
devices. A Ctrl-C still stops the whole sweep.
"""

from __future__ import annotations

import logging
import math
import os
from contextlib import ExitStack
from pathlib import Path
from typing import Callable

import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from minimind.cli import expected_error
from minimind.runs import LAST_CHECKPOINT, command_line_overrides, read_summary
from minimind.sweeps.device_pool import lease_device

log = logging.getLogger(__name__)


def sweep_group(cfg: DictConfig) -> str:
    """All jobs of one sweep share a wandb group: the sweep's name and its start time."""
    sweep_dir = Path(HydraConfig.get().sweep.dir)
    return f"{cfg.get('sweep_name') or 'multirun'}-{sweep_dir.parent.name}-{sweep_dir.name}"


def run_sweep_job(cfg: DictConfig, train: Callable[..., tuple[dict, dict]]) -> float:
    """Run `train(cfg)` as one job of a multirun; return its validation loss (NaN if it failed)."""
    run_dir = Path(cfg.paths.output_dir)
    overrides = command_line_overrides()
    previous = read_summary(run_dir)
    if previous is not None and previous.get("overrides") not in (None, overrides):
        log.error("error: %s holds a different job (%s, not %s): resume a sweep with the same parameters, or give "
                  "a new hydra.sweep.dir", run_dir, previous["overrides"], overrides)
        return math.nan
    if previous is not None and previous.get("status") == "completed":
        log.info("job %s already completed; not rerunning it", run_dir)
        return previous.get("val_loss") if previous.get("val_loss") is not None else math.nan
    with open_dict(cfg):
        if cfg.ckpt_path is None and (run_dir / LAST_CHECKPOINT).is_file():
            log.info("job %s was interrupted; continuing from its last checkpoint", run_dir)
            cfg.ckpt_path = "last"
        cfg.group = cfg.group or sweep_group(cfg)
        cfg.tags = [*cfg.tags, cfg.get("sweep_name") or "multirun"]
    with ExitStack() as stack:
        _take_devices(cfg, stack)
        try:
            metrics, _ = train(cfg, overrides)
        except Exception as error:  # recorded in the job's summary.json; the sweep goes on
            expected = expected_error(error)  # a refused combination, bad data: its message is enough
            if expected is not None:
                log.error("job %s failed; continuing with the rest of the sweep. error: %s", run_dir, expected)
            else:
                log.exception("job %s failed; continuing with the rest of the sweep", run_dir)
            return math.nan
    return metrics.get("val/loss", math.nan)


def _take_devices(cfg: DictConfig, stack: ExitStack) -> None:
    """Apply `device_pool`: one free GPU per job, or an equal share of the CPU threads."""
    pool = cfg.get("device_pool")
    if not pool or not pool.get("kind"):
        return
    with open_dict(cfg):
        if pool.kind == "gpu" and pool.size == 0:
            log.info("no GPU visible: the jobs run one after another on the CPU")
        elif pool.kind == "gpu":
            index = stack.enter_context(lease_device(pool.lock_dir, pool.size))
            cfg.trainer.accelerator, cfg.trainer.devices, cfg.trainer.strategy = "gpu", [index], "auto"
        elif pool.kind == "cpu":
            threads = max(1, len(os.sched_getaffinity(0)) // max(1, pool.size))
            torch.set_num_threads(threads)
            log.info("job uses %d CPU threads (%d jobs at once)", threads, pool.size)
        else:
            raise ValueError(f"device_pool.kind={pool.kind!r} is unknown: use gpu, cpu or null")
