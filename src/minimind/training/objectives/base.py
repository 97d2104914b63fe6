"""The interface between the training loop and a stage's objective."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from minimind.precision import parse_precision

if TYPE_CHECKING:
    from minimind.model import MiniMindConfig
    from minimind.training.module import MiniMindModule


@dataclass
class StepOutput:
    loss: torch.Tensor  # what the optimizer minimises
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)  # logged as train/<name>


class Frozen:
    """A model an objective reads but never trains (a teacher, a reference). Not an `nn.Module`
    attribute of the objective on purpose: it stays out of the module tree, so checkpoints hold
    only what trains, and the optimizer never sees its parameters."""

    def __init__(self, model: nn.Module):
        self.model = model.eval().requires_grad_(False)

    def to_run(self, module: MiniMindModule) -> None:
        """Follow the trained model: same device, and the run's parameter dtype (bf16 under bf16-true;
        float32 under mixed precision, where the forward pass runs in autocast like the student's)."""
        precision = parse_precision(module.trainer.precision) if module._trainer is not None else None
        dtype = precision.param_dtype if precision is not None else torch.float32
        self.model.to(device=module.device, dtype=dtype)


class Objective(nn.Module):
    """Turns a batch into a loss (training) and accumulates validation metrics.

    An objective is a submodule of `MiniMindModule`, so its metric states follow the module's
    device; models it only reads are held as `Frozen`. Validation must produce `loss` (the run's
    checkpoints and comparisons rank by `val/loss`)."""

    def prepare(self, *, tokenizer: Any, model_config: MiniMindConfig) -> None:
        """Before training, once the data's tokenizer is known: load what the objective reads
        (teacher, reference) and refuse what cannot work with this model and tokenizer."""

    def setup(self, module: MiniMindModule) -> None:
        """The module is on its device: move frozen models there."""

    def batch_tokens(self, batch: dict[str, torch.Tensor]) -> int:
        """Tokens this batch feeds the model (counted in train/tokens and the token budget)."""
        return batch["input_ids"].numel()

    def training_step(self, module: MiniMindModule, batch: dict[str, torch.Tensor]) -> StepOutput:
        raise NotImplementedError

    def validation_step(self, module: MiniMindModule, batch: dict[str, torch.Tensor]) -> None:
        raise NotImplementedError

    def validation_results(self) -> dict[str, torch.Tensor]:
        """The validation metrics accumulated since the last call (then reset); `loss` among them."""
        raise NotImplementedError
