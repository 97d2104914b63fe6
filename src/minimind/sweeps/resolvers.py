"""OmegaConf resolvers the configs use; registered by train.py (and `train()`) before Hydra composes.

    ${minimind.gpus:}                  GPUs this process sees (the device pool's size)
    ${minimind.gpu_jobs:}              jobs a machine runs at once: one per GPU, or one at a time without
    ${minimind.lock_dir:}              this user's folder of device-pool locks
    ${minimind.slurm_tasks_per_node:}  tasks SLURM starts on each node (conf/trainer/slurm.yaml)
    ${minimind.slurm_nodes:}           nodes of the SLURM job
    ${minimind.run_id:DEFAULT}         the run dir's name: DEFAULT, or one name shared by all ranks of an srun step
"""

from __future__ import annotations

import os
import re
import tempfile

from omegaconf import OmegaConf


def visible_gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def user_lock_dir() -> str:
    """One folder per user (`<tmp>/minimind-device-locks-<uid>`, created 0700 by the pool): users never
    share lock files, so one user's folder cannot block another's sweep with a PermissionError."""
    return os.path.join(tempfile.gettempdir(), f"minimind-device-locks-{os.getuid()}")


def slurm_tasks_per_node(env: dict[str, str] | None = None) -> int:
    """`--ntasks-per-node` if given, else what SLURM placed on this node's kind: SLURM_TASKS_PER_NODE
    ("8(x2)": 8 on each of 2 nodes; always set), else 1 (not under SLURM)."""
    env = os.environ if env is None else env
    for name in ("SLURM_NTASKS_PER_NODE", "SLURM_STEP_TASKS_PER_NODE", "SLURM_TASKS_PER_NODE"):
        counts = tasks_per_node_counts(env.get(name, ""))
        if counts:
            return counts[0]
    return 1


def tasks_per_node_counts(value: str) -> list[int]:
    """SLURM's compressed per-node counts, expanded: "4(x2),3" -> [4, 4, 3]; "" -> []."""
    counts = []
    for part in filter(None, value.split(",")):
        match = re.fullmatch(r"\s*(\d+)(?:\(x(\d+)\))?\s*", part)
        if match is None:
            return []
        counts += [int(match.group(1))] * int(match.group(2) or 1)
    return counts


def slurm_nodes(env: dict[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    return int(env.get("SLURM_JOB_NUM_NODES") or env.get("SLURM_NNODES") or 1)


def run_id(default: str, env: dict[str, str] | None = None) -> str:
    """The run dir's name. Every rank of a multi-task `srun` step composes its own config, and a
    timestamp would give each its own run dir; there they share `slurm-<job id>.<step id>` instead."""
    env = os.environ if env is None else env
    tasks = int(env.get("SLURM_STEP_NUM_TASKS") or 1)
    if tasks > 1 and env.get("SLURM_JOB_ID") and env.get("SLURM_STEP_ID") is not None:
        return f"slurm-{env['SLURM_JOB_ID']}.{env['SLURM_STEP_ID']}"
    return default


def register() -> None:
    OmegaConf.register_new_resolver("minimind.gpus", visible_gpus, replace=True)
    OmegaConf.register_new_resolver("minimind.gpu_jobs", lambda: max(1, visible_gpus()), replace=True)
    OmegaConf.register_new_resolver("minimind.lock_dir", user_lock_dir, replace=True)
    OmegaConf.register_new_resolver("minimind.slurm_tasks_per_node", lambda: slurm_tasks_per_node(), replace=True)
    OmegaConf.register_new_resolver("minimind.slurm_nodes", lambda: slurm_nodes(), replace=True)
    OmegaConf.register_new_resolver("minimind.run_id", lambda default: run_id(str(default)), replace=True)
