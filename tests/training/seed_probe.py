"""A callback that records what a run's seed decides: the initial weights and the first training batch.

Added to a real run from the command line, as a user would add any callback:
`+callbacks.probe._target_=seed_probe.SeedProbe` (this folder is on sys.path under pytest)."""

import hashlib

import torch
from lightning.pytorch import Callback


class SeedProbe(Callback):
    def __init__(self):
        self.initial_weights: str | None = None  # a hash of every parameter before the first step
        self.first_batch: list[list[int]] | None = None

    def on_train_start(self, trainer, pl_module) -> None:
        digest = hashlib.sha256()
        for name, tensor in sorted(pl_module.state_dict().items()):
            digest.update(name.encode() + tensor.detach().cpu().to(torch.float32).numpy().tobytes())
        self.initial_weights = digest.hexdigest()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.first_batch is None:
            self.first_batch = batch["input_ids"].tolist()
