"""The LoRA stage (`stage=lora`): what a run needs to know about its adapters and its frozen base.

The base is `init_from=` (required, on resume too: a LoRA run's checkpoints hold only the
adapters). A run records in its checkpoints' hyperparameters the LoRA config, the file its base
was read from and a fingerprint of the base's weights; a resumed run, and every tool loading the
run, reads the base again and checks it is the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

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


def resume_problems(checkpoint: dict[str, Any], state: dict[str, torch.Tensor], setup: LoRASetup | None,
                    model_config: MiniMindConfig | None, given: str, lora_stage: bool) -> list[str] | None:
    """What stops a run from resuming `checkpoint` (`given`: ckpt_path= as typed) when the run or the
    checkpoint is a LoRA one; None when neither is (the caller then checks the whole model).
    setup: the run's LoRA setup (None for a LoRA stage whose setup failed: that problem is already listed)."""
    recorded = checkpoint["hyper_parameters"].get(LORA_HPARAMS)
    if not lora_stage and not recorded:
        return None
    if lora_stage and setup is None:
        return []
    if not lora_stage:
        return [f"ckpt_path={given} is a LoRA run's checkpoint (adapters only): resume it with stage=lora "
                f"init_from={recorded['base']} (its base)"]
    if not recorded:
        return [f"ckpt_path={given} is not a LoRA run's checkpoint: to train adapters on its weights, start a new "
                f"run with init_from={given} (without ckpt_path)"]
    if recorded["base_fingerprint"] != setup.base_fingerprint:
        return [f"init_from: {setup.base} is not the base ckpt_path={given} was trained on ({recorded['base']}; the "
                f"weights differ): resume with init_from={recorded['base']}"]
    ours = setup.config.to_dict()
    differ = {k: (recorded.get(k), ours[k]) for k in ("rank", "alpha", "targets") if recorded.get(k) != ours[k]}
    if differ:
        return [f"ckpt_path={given} trained adapters with " + ", ".join(f"stage.lora.{k}={a}" for k, (a, _) in
                differ.items()) + "; this run says " + ", ".join(f"{k}={b}" for k, (_, b) in differ.items())
                + ": a resumed run keeps its adapters, so drop the overrides that differ"]
    if model_config is None:
        return []
    expected = adapter_shapes(model_config, setup.config)
    rows = [(k, ": missing in the checkpoint") for k in sorted(set(expected) - set(state))]
    rows += [(k, ": unexpected in the checkpoint") for k in sorted(set(state) - set(expected))]
    rows += [(k, f": checkpoint {tuple(state[k].shape)} vs model {expected[k]}") for k in sorted(set(state) & set(expected))
             if tuple(state[k].shape) != expected[k]]
    if rows:
        return [f"ckpt_path={given}: its adapters do not fit this run's model:\n    " + "\n    ".join(fold_layers(rows))]
    return []
