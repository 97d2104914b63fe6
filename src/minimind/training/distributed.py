"""Pieces the distributed strategies need from the model."""

from torch.distributed.fsdp.wrap import ModuleWrapPolicy

from minimind.model.transformer import MiniMindBlock


def block_wrap_policy() -> ModuleWrapPolicy:
    """FSDP shards each transformer block as one unit: gathered just before it runs, freed after."""
    return ModuleWrapPolicy({MiniMindBlock})
