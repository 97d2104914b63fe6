"""LoRA: train a low-rank update beside frozen weights (Hu et al., 2021), in upstream MiniMind's layout.

    y = W x + s * B A dropout(x)        A: (r, in) ~ N(0, 0.02)    B: (out, r) = 0    s = alpha / r

W stays as loaded; only A and B train, r * (in + out) numbers instead of in * out. B starts at
zero, so training starts exactly at the base model. Upstream's defaults: r = 16, no scaling
(alpha = r), on every nn.Linear whose input and output widths are equal (`square`: the attention's
q_proj and o_proj in MiniMind), no dropout.

The adapted layer keeps the base's parameter names and adds the adapter's beside them, as
upstream's `apply_lora` does: `...q_proj.weight` (frozen), `...q_proj.lora.A.weight`,
`...q_proj.lora.B.weight`. So the adapted model's own state dict is already upstream's adapter
file format, and base weights load into it under their usual names. Merging folds the update into
the weights, W' = W + s B A (`minimind.checkpoints.lora.merge_lora`), which computes the same function.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from minimind.errors import ConfigurationError

SQUARE = "square"  # upstream's rule: every nn.Linear with in_features == out_features
A_STD = 0.02  # upstream's initialisation of A
ADAPTER_KEY = re.compile(r"^(.+)\.lora\.(A|B)\.weight$")


@dataclass(frozen=True)
class LoRAConfig:
    rank: int = 16
    alpha: float | None = None  # None: = rank, so s = 1 (upstream has no scaling)
    targets: tuple[str, ...] = (SQUARE,)  # `square` and/or module-name patterns (`*.q_proj`, `*.mlp.*`)
    dropout: float = 0.0  # on the adapter's input, in training only

    def __post_init__(self):
        targets = (self.targets,) if isinstance(self.targets, str) else tuple(self.targets or ())
        object.__setattr__(self, "targets", targets)
        if not isinstance(self.rank, int) or isinstance(self.rank, bool) or self.rank < 1:
            raise ConfigurationError(f"stage.lora.rank={self.rank} must be an integer >= 1 (upstream: 16)")
        if self.alpha is not None and (not isinstance(self.alpha, (int, float)) or self.alpha <= 0):
            raise ConfigurationError(f"stage.lora.alpha={self.alpha} must be > 0, or null for alpha = rank "
                                     "(scaling alpha / rank = 1, as upstream)")
        if not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise ConfigurationError(f"stage.lora.dropout={self.dropout} must be in [0, 1)")
        if not targets or not all(isinstance(t, str) and t for t in targets):
            raise ConfigurationError(f"stage.lora.targets={list(targets)} must be `square` (upstream's rule) or a "
                                     "list of module-name patterns, e.g. stage.lora.targets=[square,'*.gate_proj']")

    @property
    def scaling(self) -> float:
        return (self.alpha if self.alpha is not None else self.rank) / self.rank

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> LoRAConfig:
        known = {"rank", "alpha", "targets", "dropout"}
        return cls(**{k: v for k, v in values.items() if k in known})

    def to_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "alpha": self.alpha, "targets": list(self.targets), "dropout": self.dropout}


class LoRA(nn.Module):
    """The update B A x: `A` projects down to rank r, `B` back up (upstream's module and names)."""

    def __init__(self, in_features: int, out_features: int, rank: int, device=None, dtype=None):
        super().__init__()
        self.A = nn.Linear(in_features, rank, bias=False, device=device, dtype=dtype)
        self.B = nn.Linear(rank, out_features, bias=False, device=device, dtype=dtype)
        nn.init.normal_(self.A.weight, mean=0.0, std=A_STD)
        nn.init.zeros_(self.B.weight)  # the adapted model starts as the base

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.B(self.A(x))


class LoRALinear(nn.Linear):
    """A frozen nn.Linear (its own `weight`, same name) plus a trainable `lora` update."""

    def __init__(self, base: nn.Linear, rank: int, scaling: float = 1.0, dropout: float = 0.0):
        super().__init__(base.in_features, base.out_features, bias=False, device="meta")  # shares base's tensors
        self.weight, self.bias = base.weight, base.bias
        self.lora = LoRA(base.in_features, base.out_features, rank, device=base.weight.device, dtype=base.weight.dtype)
        self.lora_dropout = nn.Dropout(dropout)
        self.scaling = scaling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias) + self.scaling * self.lora(self.lora_dropout(x))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, rank={self.lora.A.out_features}, scaling={self.scaling:g}"


def target_names(model: nn.Module, targets: tuple[str, ...] | list[str] | str = (SQUARE,)) -> list[str]:
    """The names of the nn.Linear layers `targets` chooses, in model order; every pattern must match one."""
    targets = (targets,) if isinstance(targets, str) else tuple(targets)
    linears = {name: m for name, m in model.named_modules() if isinstance(m, nn.Linear) and name}
    chosen, unmatched = set(), []
    for target in targets:
        if target == SQUARE:
            found = {n for n, m in linears.items() if m.in_features == m.out_features}
        else:
            found = {n for n in linears if fnmatch.fnmatchcase(n, target)}
        chosen |= found
        if not found:
            unmatched.append(target)
    if unmatched:
        kinds = sorted({re.sub(r"\.\d+\.", ".N.", n) for n in linears})
        raise ConfigurationError(
            f"stage.lora.targets: {', '.join(map(repr, unmatched))} matches no linear layer of this model. Its linear "
            f"layers (N: any layer or expert): {', '.join(kinds)}; patterns use shell wildcards, e.g. '*.q_proj'")
    tied = getattr(getattr(model, "config", None), "tie_word_embeddings", False)
    if tied and "lm_head" in chosen:
        raise ConfigurationError("stage.lora.targets chooses lm_head, whose weight is the token embedding "
                                 "(tie_word_embeddings): an update to it cannot be merged into one tensor; "
                                 "leave lm_head out of the targets")
    return [n for n in linears if n in chosen]


def add_lora(model: nn.Module, config: LoRAConfig) -> list[str]:
    """Freeze every parameter of `model` and give the target layers trainable adapters, in place.

    Call it after the base weights are loaded. Returns the adapted layers' names."""
    names = target_names(model, config.targets)
    model.requires_grad_(False)
    for name in names:
        parent, _, attr = name.rpartition(".")
        owner = model.get_submodule(parent) if parent else model
        setattr(owner, attr, LoRALinear(getattr(owner, attr), config.rank, config.scaling, config.dropout))
    return names


def adapter_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The adapters of an adapted model: `{module}.lora.A.weight` / `.lora.B.weight`, upstream's names."""
    return {k: v for k, v in model.state_dict().items() if ADAPTER_KEY.match(k)}

