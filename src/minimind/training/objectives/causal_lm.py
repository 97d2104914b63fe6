"""Next-token cross-entropy: pretraining, SFT and LoRA (SFT batches carry -100 outside the
assistant's replies, so the same loss trains on the replies only; packed SFT batches carry
`document_ids`, which keep the conversations sharing a row apart)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from minimind.training.metrics import LanguageModelMetrics, bits_per_byte
from minimind.training.objectives.base import Objective, StepOutput

if TYPE_CHECKING:
    from minimind.training.module import MiniMindModule


class CausalLM(Objective):
    def __init__(self):
        super().__init__()
        self.val_metrics = LanguageModelMetrics()

    def lm_metrics(self, module: MiniMindModule, loss: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Loss, perplexity and bits per byte of a mean next-token loss over `labels` (-100 = ignored)."""
        return {"loss": loss, "ppl": loss.detach().exp(), "bpb": bits_per_byte(loss, labels[:, 1:], module.token_bytes)}

    def training_step(self, module: MiniMindModule, batch: dict[str, torch.Tensor]) -> StepOutput:
        out = module.model(batch["input_ids"], labels=batch["labels"], document_ids=batch.get("document_ids"))
        metrics = self.lm_metrics(module, out.loss, batch["labels"])
        if module.config.use_moe:
            metrics["aux_loss"] = out.aux_loss
        return StepOutput(out.loss + out.aux_loss, metrics)

    def validation_step(self, module: MiniMindModule, batch: dict[str, torch.Tensor]) -> None:
        out = module.model(batch["input_ids"], labels=batch["labels"], document_ids=batch.get("document_ids"))
        self.val_metrics.update(out.loss, batch["labels"][:, 1:], module.token_bytes)

    def validation_results(self) -> dict[str, torch.Tensor]:
        values = self.val_metrics.compute()
        self.val_metrics.reset()
        return values
