"""OmegaConf resolvers the launcher configs use; registered by train.py before Hydra composes."""

from __future__ import annotations

from omegaconf import OmegaConf


def visible_gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def register() -> None:
    OmegaConf.register_new_resolver("minimind.gpus", visible_gpus, replace=True)
    # Jobs a machine runs at once when each takes a GPU: one per GPU, or one at a time without.
    OmegaConf.register_new_resolver("minimind.gpu_jobs", lambda: max(1, visible_gpus()), replace=True)
