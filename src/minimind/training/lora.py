"""The LoRA stage (`stage=lora`): what a run needs to know about its adapters and its frozen base.

The base is `init_from=` (required). A run records in its checkpoints' hyperparameters the LoRA
config, the file its base was read from and a fingerprint of the base's weights: its checkpoints
hold only the adapters, so a resumed run (`ckpt_path=`, no init_from= needed) and every tool
loading the run read the base again and check it is the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from minimind.checkpoints.load import read_lora_base
from minimind.checkpoints.lora import LORA_HPARAMS, weights_fingerprint
from minimind.checkpoints.mismatch import fold_layers
from minimind.model import MiniMindConfig, MiniMindForCausalLM
from minimind.model.lora import LoRAConfig, adapter_state, add_lora
from minimind.training.init import InitWeights


@dataclass(frozen=True)
class LoRASetup:
    config: LoRAConfig
    base: str  # the file the base weights were read from, absolute
    base_fingerprint: str

    @classmethod
    def of(cls, config: LoRAConfig, base: InitWeights, model_config: MiniMindConfig) -> LoRASetup:
        """The setup of a run on `base`; targets that match nothing in `model_config` are refused here."""
        adapter_shapes(model_config, config)
        return cls(config, str(base.path.resolve()), weights_fingerprint(base.state))

    def hparams(self) -> dict[str, Any]:
        """What a checkpoint records (plain data: checkpoints load with weights_only=True)."""
        return {**self.config.to_dict(), "base": self.base, "base_fingerprint": self.base_fingerprint}


def stage_lora(cfg: DictConfig) -> LoRAConfig | None:
    """The stage's LoRA config (`stage.lora`), or None for a stage that trains the whole model."""
    lora = cfg.stage.get("lora")
    return None if lora is None else LoRAConfig.from_dict(OmegaConf.to_container(lora, resolve=True))


def adapter_shapes(model_config: MiniMindConfig, lora: LoRAConfig) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):  # shapes only, no memory
        model = MiniMindForCausalLM(model_config)
        add_lora(model, lora)
    return {k: tuple(v.shape) for k, v in adapter_state(model).items()}


def read_base(recorded: dict[str, Any], fields: dict[str, Any], given: str, init_from: str | None) -> InitWeights:
    """The frozen base of a resumed LoRA run (`given`: its ckpt_path= as typed): the file its checkpoint
    records, or `init_from=` (the same weights elsewhere), read again and checked against the fingerprint."""
    kind, path, state, source = read_lora_base(recorded, fields, given, path=init_from,
                                               retry="give a copy of it as init_from=")
    return InitWeights(path, kind, source, state)


def resume_problems(recorded: dict[str, Any], adapters: dict[str, torch.Tensor], setup: LoRASetup,
                    model_config: MiniMindConfig, given: str) -> list[str]:
    """What stops this LoRA run from resuming a LoRA checkpoint (`recorded`: its `lora` hyperparameters,
    `adapters`: its state; `given`: ckpt_path= as typed): other adapters than the run would train."""
    ours = setup.config.to_dict()
    differ = {k: (recorded.get(k), ours[k]) for k in ("rank", "alpha", "targets") if recorded.get(k) != ours[k]}
    if differ:
        return [f"{given} trained adapters with " + ", ".join(f"stage.lora.{k}={a}" for k, (a, _) in differ.items())
                + "; this run says " + ", ".join(f"{k}={b}" for k, (_, b) in differ.items())
                + ": a resumed run keeps its adapters, so drop the overrides that differ"]
    expected = adapter_shapes(model_config, setup.config)
    rows = [(k, ": missing in the checkpoint") for k in sorted(set(expected) - set(adapters))]
    rows += [(k, ": unexpected in the checkpoint") for k in sorted(set(adapters) - set(expected))]
    rows += [(k, f": checkpoint {tuple(adapters[k].shape)} vs model {expected[k]}")
             for k in sorted(set(adapters) & set(expected)) if tuple(adapters[k].shape) != expected[k]]
    if rows:
        return [f"{given}: its adapters do not fit this run's model:\n    " + "\n    ".join(fold_layers(rows))]
    return []
