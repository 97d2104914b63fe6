"""Language-modelling metrics that stay comparable across runs, devices and tokenizers.

Loss per token depends on the tokenizer (bigger tokens, higher loss per token); bits per
byte divides the total loss by the UTF-8 bytes it predicted, so two runs with different
vocabularies can be compared on one axis. Sums are torchmetrics states, so they reduce
correctly across DDP ranks and accumulate over a whole validation epoch.
"""

from __future__ import annotations

import math

import torch
from torchmetrics import Metric


def target_bytes(targets: torch.Tensor, token_bytes: torch.Tensor) -> torch.Tensor:
    """UTF-8 bytes of the predicted tokens (targets of -100 count nothing)."""
    return torch.where(targets != -100, token_bytes[targets.clamp(min=0)], 0).sum()


def bits_per_byte(mean_loss: torch.Tensor, targets: torch.Tensor, token_bytes: torch.Tensor) -> torch.Tensor:
    nats = mean_loss.detach().double() * (targets != -100).sum()
    return nats / (math.log(2) * target_bytes(targets, token_bytes).double().clamp(min=1))


class LanguageModelMetrics(Metric):
    """Accumulates summed next-token loss (nats), predicted tokens and predicted bytes."""

    full_state_update = False

    def __init__(self):
        super().__init__()
        for name in ("nats", "tokens", "bytes"):
            self.add_state(name, default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, mean_loss: torch.Tensor, targets: torch.Tensor, token_bytes: torch.Tensor) -> None:
        """mean_loss: the batch's mean next-token loss over `targets` (-100 = ignored)."""
        self.nats += mean_loss.detach().double() * (targets != -100).sum()
        self.tokens += (targets != -100).sum()
        self.bytes += target_bytes(targets, token_bytes)

    def compute(self) -> dict[str, torch.Tensor]:
        loss = self.nats / self.tokens.clamp(min=1)
        return {"loss": loss, "ppl": loss.exp(), "bpb": self.nats / (math.log(2) * self.bytes.clamp(min=1))}
