"""Log-probabilities of the tokens a sequence holds, as the preference and RL objectives compare them."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def token_logps(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(B, T) log p(token t+1 | tokens <= t) at every position whose label is trained (labels != -100), 0 elsewhere.

    Position t predicts token t+1 (the labels are shifted, not the logits, as the model's own loss does);
    the last position predicts nothing. Computed in float32 through `cross_entropy`, which never holds a
    second copy of the (B, T, vocab) log-softmax."""
    targets = F.pad(labels[:, 1:], (0, 1), value=-100)
    nll = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=-100, reduction="none")
    return -nll.view_as(targets)


def sequence_logps(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(B,) the sum of each row's trained tokens' log-probabilities: log p(reply | prompt) of a conversation."""
    return token_logps(logits, labels).sum(dim=1)
