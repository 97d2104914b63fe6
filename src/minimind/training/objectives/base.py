"""The interface between the training loop and a stage's objective."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from minimind.precision import parse_precision

if TYPE_CHECKING:
    from minimind.model import MiniMindConfig
    from minimind.training.init import InitWeights
    from minimind.training.module import MiniMindModule

EXTRA_STATE = "objective._extra_state"  # where a checkpoint holds what an objective records (`get_extra_state`)


@dataclass
class StepOutput:
    loss: torch.Tensor  # what the optimizer minimises
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)  # logged as train/<name>


def run_param_dtype(module: MiniMindModule) -> torch.dtype:
    """The dtype of the run's parameters: bf16 under bf16-true; float32 under mixed precision (where forward
    passes run in autocast, frozen models' like the trained one's)."""
    precision = parse_precision(module.trainer.precision) if module._trainer is not None else None
    return precision.param_dtype if precision is not None else torch.float32


def recorded_state(ckpt_path: str | None) -> dict[str, Any] | None:
    """What the objective of the run a checkpoint belongs to recorded in it (`get_extra_state`); None if nothing."""
    if ckpt_path is None:
        return None
    from minimind.checkpoints import safe_torch_load

    state = safe_torch_load(ckpt_path, mmap=True).get("state_dict", {}).get(EXTRA_STATE)
    return state if isinstance(state, dict) else None


class Objective(nn.Module):
    """Turns a batch into a loss (training) and accumulates validation metrics.

    An objective is a submodule of `MiniMindModule`, so its metric states follow the module's
    device; models it only reads are held as `PinnedModel`s (frozen.py). Validation must produce `loss` (the run's
    checkpoints and comparisons rank by `val/loss`). `data_formats` are the data formats it trains on
    (`data.format`, as the data module resolves it)."""

    data_formats: tuple[str, ...] = ("pretrain", "sft")

    def problems(self, *, model_config: MiniMindConfig, seq_len: int, length_from: str) -> list[str]:
        """Settings this objective cannot work with, each with what to change (reported by the preflight, before
        any data is read, with the config's other problems). length_from: what decides the run's length."""
        return []

    def prepare(self, *, tokenizer: Any, model_config: MiniMindConfig, init: InitWeights | None = None,
                resume: str | None = None) -> None:
        """Before training, once the data's tokenizer is known: load what the objective reads
        (teacher, reference) and refuse what cannot work with this model and tokenizer.
        init: the weights the run starts from (`init_from=`), None when resuming or from scratch.
        resume: the checkpoint a resumed run continues from (`recorded_state` reads what it recorded)."""

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

    def summary(self, metrics: dict[str, float], started: dict[str, float | None] | None = None) -> dict[str, Any]:
        """What summary.json should also say about this stage's run, given the final logged metrics and the
        validation before the first step (`started`: summary.json's `val_at_start`, None without one)."""
        return {}

    def validation_samples(self) -> list[dict[str, Any]] | None:
        """Rows to show from the validation now ending (`prompt`, `completion`, and any scores), which the samples
        callback writes instead of completing its own prompts; read before `validation_results` resets them.
        None (the default): the objective's validation produces no replies of its own."""
        return None
