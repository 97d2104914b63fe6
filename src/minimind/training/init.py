"""Where a run's model comes from: `init_from=PATH` (trained weights) or a resumed checkpoint.

PATH is anything the tools load: a training run dir, a Lightning `.ckpt`, an upstream `.pth`
(its shape from `model=PRESET model.<field>=...`, or the `minimind_config.json` beside it), or a
Hugging Face directory. Only the weights are taken: the optimizer, schedule and data position
start fresh (to continue a run exactly, resume it with `ckpt_path=`). The model's config comes
from the source; what the user typed about the model (`model.dropout=0.1`, `attention/backend=eager`,
`model=PRESET`) is applied on top, and a config whose shapes cannot hold the weights is refused
with the list of what does not fit, before any data is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from minimind.checkpoints import read_weights
from minimind.model import MiniMindConfig
from minimind.runs import parse_override

# Typed overrides that change the model: the model group and its fields, and the groups that set fields.
GROUP_FIELDS = {"attention": ("num_key_value_heads",), "attention/backend": ("attn_implementation",)}


@dataclass
class InitWeights:
    path: Path  # the file or directory read
    kind: str  # lightning | pth | hf
    config_source: str  # where the shape came from, for messages
    state: dict[str, torch.Tensor]

    def describe(self) -> str:
        return f"{self.kind} weights {self.path} (config from {self.config_source})"


def with_typed_model_settings(fields: dict[str, Any], cfg: DictConfig, overrides: list[str],
                              source: str) -> tuple[dict[str, Any], str]:
    """A stored model config with what the user typed about the model on top: `model.<field>=` and the groups
    that set fields (`attention=`, `attention/backend=`) take the composed value; `model=PRESET` replaces it."""
    composed: dict[str, Any] = OmegaConf.to_container(cfg.model, resolve=True)
    keys = [parse_override(o)[0] for o in overrides]
    if "model" in keys:
        return dict(composed), "model=... on the command line"
    typed = {k.split(".")[1] for k in keys if k.startswith("model.")}
    typed |= {f for group, names in GROUP_FIELDS.items() if group in keys for f in names}
    if not typed:
        return dict(fields), source
    return {**fields, **{f: composed[f] for f in typed if f in composed}}, f"{source}, with {', '.join(sorted(typed))} as typed"


def resolve_init(cfg: DictConfig, overrides: list[str]) -> tuple[MiniMindConfig, InitWeights]:
    """The model config of a run started from `cfg.init_from`, and the weights to load into it."""
    chose_preset = "model" in [parse_override(o)[0] for o in overrides]
    composed = OmegaConf.to_container(cfg.model, resolve=True) if chose_preset else None
    kind, path, fields, state, source = read_weights(cfg.init_from, composed, what="init_from")
    fields, source = with_typed_model_settings(fields, cfg, overrides, source)
    return MiniMindConfig.from_dict(fields), InitWeights(path, kind, source, state)
