"""One job of a sweep: skip it if done, resume it if interrupted, and never let it stop the others.

Re-running a sweep with the same `hydra.sweep.dir` picks up where it stopped: a job whose
`summary.json` says completed is not rerun, a job with checkpoints continues from its last
one, and a job that fails records its error in `summary.json` and hands the next job the
devices. A Ctrl-C still stops the whole sweep.

On one machine (`launcher=auto` / `cpu_parallel`) every job runs in a fresh process of its
own, `python -m minimind.sweeps.jobs <job dir>/.sweep_job.yaml`, started by the launcher's
worker once the job's devices are leased:

- it sees only its leased GPUs (`CUDA_VISIBLE_DEVICES` set to their UUIDs), so nothing in it
  can touch another job's GPU;
- a multi-process job (trainer=ddp / fsdp / ddp_cpu) runs as it would alone: Lightning starts
  the other ranks by re-running this job's command, not the sweep's `-m` command line;
- a CUDA error, an out-of-memory error or a kill ends that process only: its memory is freed
  by its exit before the worker releases the lease, the next job starts in a clean process,
  and the worker records in `summary.json` what the job could not (killed by a signal).

Under `launcher=slurm` each job is already a SLURM job of its own (one task per GPU, ranks
from SLURM), so it runs in the task's process.
"""

from __future__ import annotations

import ctypes
import logging
import logging.config
import math
import os
import signal
import subprocess
import sys
import traceback
from contextlib import ExitStack
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from minimind.cli import error_message, expected_error
from minimind.errors import ConfigurationError
from minimind.runs import LAST_CHECKPOINT, command_line_overrides, read_summary
from minimind.training.summary import RunSummary

log = logging.getLogger(__name__)

JOB_SPEC = ".sweep_job.yaml"  # in the job's run dir while it runs: its config, overrides and logging
PARENT_ENV = "MINIMIND_JOB_PARENT"  # pid of the process that started this one (see _die_with_parent)


def sweep_group(cfg: DictConfig) -> str:
    """All jobs of one sweep share a wandb group: the sweep's name and its start time."""
    sweep_dir = Path(HydraConfig.get().sweep.dir)
    return f"{cfg.get('sweep_name') or 'multirun'}-{sweep_dir.parent.name}-{sweep_dir.name}"


def run_sweep_job(cfg: DictConfig) -> float:
    """Run one job of a multirun; return its validation loss (NaN if it failed)."""
    run_dir = Path(cfg.paths.output_dir)
    overrides = command_line_overrides()
    previous = read_summary(run_dir)
    if previous is not None and previous.get("overrides") not in (None, overrides):
        log.error("error: %s holds a different job (%s, not %s): resume a sweep with the same parameters, or give "
                  "a new hydra.sweep.dir", run_dir, previous["overrides"], overrides)
        return math.nan
    if previous is not None and previous.get("status") == "completed":
        log.info("job %s already completed; not rerunning it", run_dir)
        return _val_loss(previous)
    with open_dict(cfg):
        if cfg.ckpt_path is None and (run_dir / LAST_CHECKPOINT).is_file():
            log.info("job %s was interrupted; continuing from its last checkpoint", run_dir)
            cfg.ckpt_path = "last"
        cfg.group = cfg.group or sweep_group(cfg)
        cfg.tags = [*cfg.tags, cfg.get("sweep_name") or "multirun"]
    try:
        pool = cfg.get("device_pool")
        if pool and pool.get("kind"):
            summary = _run_in_own_process(cfg, overrides, pool)
        else:
            summary = _run_in_this_process(cfg, overrides)
    except Exception as error:  # e.g. a refused device request: recorded like any failure; the sweep goes on
        summary = _record_failure(run_dir, overrides, error)
    if summary.get("status") != "completed":
        log.error("job %s failed; continuing with the rest of the sweep. %s", run_dir,
                  summary.get("error") or "(no error recorded)")
        return math.nan
    return _val_loss(summary)


def _val_loss(summary: dict) -> float:
    return summary.get("val_loss") if summary.get("val_loss") is not None else math.nan


# --- where the job runs ---------------------------------------------------------------------------

def _run_in_this_process(cfg: DictConfig, overrides: list[str]) -> dict:
    """Without a device pool (launcher=slurm): this process is the job, or one of its SLURM tasks."""
    from lightning.fabric.plugins.environments import SLURMEnvironment

    from minimind.training.budget import world_size
    from minimind.training.run import train

    if world_size(cfg.trainer) > 1 and not SLURMEnvironment.detect():
        raise ConfigurationError(
            "a multi-process job (trainer.devices x trainer.num_nodes > 1) in a multirun without a device pool "
            "would make Lightning re-run the sweep's own command line for its other ranks: use launcher=auto or "
            "launcher=cpu_parallel (each job in processes of its own), or launcher=slurm")
    try:
        train(cfg, overrides)
    except Exception as error:  # recorded in the job's summary.json by train()
        if expected_error(error) is None:
            log.exception("job %s failed", cfg.paths.output_dir)
    return read_summary(Path(cfg.paths.output_dir)) or {}


def _run_in_own_process(cfg: DictConfig, overrides: list[str], pool: DictConfig) -> dict:
    """Lease the job's devices, run it in a process of its own that sees only them, and wait."""
    from minimind.sweeps.device_pool import gpu_uuids, lease_devices

    run_dir = Path(cfg.paths.output_dir)
    env = dict(os.environ)
    with ExitStack() as stack, open_dict(cfg):
        wants_gpu = str(cfg.trainer.get("accelerator", "auto")) in ("auto", "gpu", "cuda")
        if pool.kind == "gpu" and pool.size > 0 and wants_gpu:
            uuids = gpu_uuids()
            count = _gpus_per_job(cfg.trainer, len(uuids))
            taken = stack.enter_context(lease_devices(pool.lock_dir, uuids, count))
            env["CUDA_VISIBLE_DEVICES"] = ",".join(uuids[i] for i in taken)
            cfg.trainer.accelerator, cfg.trainer.devices = "gpu", count  # all it sees
        elif pool.kind == "gpu":
            if pool.size == 0:
                log.info("no GPU visible: the jobs run one after another on the CPU")
            else:
                env["CUDA_VISIBLE_DEVICES"] = ""  # a CPU job leaves the GPUs to the others
        elif pool.kind == "cpu":
            threads = max(1, _cores() // max(1, int(pool.size) * _processes_per_job(cfg.trainer)))
            env["OMP_NUM_THREADS"] = str(threads)
            log.info("job uses %d CPU thread(s) per process (%d jobs at once)", threads, pool.size)
        else:
            raise ConfigurationError(f"device_pool.kind={pool.kind!r} is unknown: use gpu, cpu or null")
        spec = run_dir / JOB_SPEC
        OmegaConf.save(OmegaConf.create({
            "config": OmegaConf.to_container(cfg, resolve=True), "overrides": list(overrides),
            "logging": OmegaConf.to_container(HydraConfig.get().job_logging, resolve=True)}), spec)
        RunSummary(run_dir, overrides).write()  # "running": a job that dies before writing its own still shows
        env[PARENT_ENV] = str(os.getpid())
        try:
            code = _wait(subprocess.Popen([sys.executable, "-m", "minimind.sweeps.jobs", str(spec)], env=env))
        finally:
            spec.unlink(missing_ok=True)
    # The process has exited, so its memory is free; only now are the devices released (above).
    summary = read_summary(run_dir) or {}
    if summary.get("status") in (None, "running"):
        summary = _record_failure(run_dir, overrides, JobProcessError(_how_it_ended(code)))
    return summary


def _how_it_ended(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return (f"the job's process was killed by {name} before it finished (SIGKILL is what the kernel's "
                "out-of-memory killer sends)")
    return f"the job's process ended with exit status {code} before recording a result (see the sweep's output)"


def _wait(process: subprocess.Popen) -> int:
    try:
        return process.wait()
    except KeyboardInterrupt:
        # The job is in this process group and got the same Ctrl-C: let it record its summary.
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        raise


class JobProcessError(RuntimeError):
    """A job's process ended without recording how (killed, crashed)."""


def _record_failure(run_dir: Path, overrides: list[str], error: BaseException) -> dict:
    """Mark the job failed in its summary.json, keeping what the job itself recorded before."""
    summary = RunSummary(run_dir, overrides)
    previous = read_summary(run_dir)
    if previous is not None and previous.get("status") == "running":
        summary.update(**{k: v for k, v in previous.items() if k in summary.data})
    summary.fail(error)
    summary.write()
    return summary.data


def _gpus_per_job(trainer: DictConfig, available: int) -> int:
    """GPUs one job leases: `devices` as Lightning reads it, except `auto` (the pool's unit: one GPU)."""
    if int(trainer.get("num_nodes", 1) or 1) > 1:
        raise ConfigurationError(f"trainer.num_nodes={trainer.num_nodes}: a sweep on this machine runs each job on "
                                 "this node; use launcher=slurm for multi-node jobs")
    devices = trainer.get("devices", "auto")
    if devices in ("auto", None):
        return 1
    if isinstance(devices, str):
        devices = int(devices) if devices.strip().lstrip("-").isdigit() else [d for d in devices.split(",") if d.strip()]
    if devices == -1:
        return max(1, available)
    count = devices if isinstance(devices, int) else len(devices)
    if count > available:
        raise ConfigurationError(f"trainer.devices={trainer.devices} asks for {count} GPUs per job but this machine "
                                 f"has {available}: lower trainer.devices")
    return count


def _processes_per_job(trainer: DictConfig) -> int:
    """Processes a job starts on CPU (trainer=ddp_cpu: devices=2), to share the cores fairly."""
    devices = trainer.get("devices", 1)
    return devices if isinstance(devices, int) and devices > 0 else 1


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


# --- the job's own process ------------------------------------------------------------------------

def _die_with_parent() -> None:
    """Ask Linux to kill this process when the process that started it dies (a killed sweep worker,
    or rank zero of a killed job), so no job or DDP rank outlives its sweep holding a GPU."""
    parent = os.environ.get(PARENT_ENV)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: nothing to ask
        return
    if parent and os.getppid() != int(parent):
        os._exit(1)  # the parent died before the request took effect
    os.environ[PARENT_ENV] = str(os.getpid())  # for the ranks Lightning starts from this process


def main(argv: list[str] | None = None) -> int:
    """`python -m minimind.sweeps.jobs SPEC`: run the job a sweep worker wrote to SPEC."""
    argv = sys.argv[1:] if argv is None else argv
    _die_with_parent()
    spec = OmegaConf.to_container(OmegaConf.load(argv[0]))
    if spec.get("logging") and os.environ.get("LOCAL_RANK", "0") == "0":
        logging.config.dictConfig(spec["logging"])
    from minimind.training.run import train

    try:
        train(OmegaConf.create(spec["config"]), list(spec["overrides"]))
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # already in summary.json; say it once on the terminal too
        expected = expected_error(error)
        if expected is not None:
            print(error_message(expected), file=sys.stderr, flush=True)
        else:
            traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
