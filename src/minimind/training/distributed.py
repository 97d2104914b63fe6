"""What the distributed strategies need from the model, and what the model's users need from them.

Under FSDP (conf/trainer/fsdp.yaml) no rank holds the whole model: each `MiniMindBlock` is
a shard unit (gathered just before it runs, freed after) and activation checkpointing is
applied by the strategy to the same blocks, inside their shard units. Work that rank zero
alone does with the model (sample generation, the final `.pth` export) then needs the
shards gathered first, and gathering is collective: `full_model` is called on every rank.
"""

from __future__ import annotations

import torch
from lightning.pytorch.strategies import FSDPStrategy, Strategy
from torch.distributed.fsdp.wrap import ModuleWrapPolicy

from minimind.model import MiniMindForCausalLM
from minimind.model.transformer import MiniMindBlock


def block_wrap_policy() -> ModuleWrapPolicy:
    """FSDP shards each transformer block as one unit: gathered just before it runs, freed after."""
    return ModuleWrapPolicy({MiniMindBlock})


def block_checkpoint_policy(enabled: bool) -> ModuleWrapPolicy | None:
    """FSDP's `activation_checkpointing_policy`: recompute each block's activations in the backward
    pass when `enabled` (the run's `activation_checkpointing`), else none."""
    return ModuleWrapPolicy({MiniMindBlock}) if enabled else None


def is_fsdp(strategy: Strategy | None) -> bool:
    return isinstance(strategy, FSDPStrategy)


def full_model(trainer, module, device: torch.device | str | None = None) -> MiniMindForCausalLM | None:
    """The whole model on global rank zero, None on the other ranks.

    Outside FSDP that is rank zero's own `module.model`, as it is. Under FSDP every rank must
    call this: the shards are gathered into a full state dict on rank zero (offloaded to CPU),
    which loads it, strictly, into an unsharded copy (on `device` if given). The copy shares
    nothing with the training model, so generating with it or saving it cannot disturb training.
    """
    strategy = trainer.strategy
    if not is_fsdp(strategy):
        return module.model if trainer.is_global_zero else None
    from torch.distributed.fsdp import FullStateDictConfig, StateDictType
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

    root = strategy.model  # the FSDP-wrapped LightningModule
    # Gathered straight into CPU memory from GPUs (never the whole model on one GPU); already there on CPUs.
    offload = strategy.root_device.type != "cpu"
    with FSDP.state_dict_type(root, StateDictType.FULL_STATE_DICT,
                              FullStateDictConfig(offload_to_cpu=offload, rank0_only=True)):
        state = root.state_dict()
    if not trainer.is_global_zero:
        return None
    prefix = "model."  # MiniMindModule.model
    copy = MiniMindForCausalLM(module.config)
    copy.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}, strict=True)
    return copy.to(device) if device is not None else copy
