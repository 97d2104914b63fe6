"""Real FSDP on CPU processes (gloo), for tests/training/test_fsdp.py.

    python tests/training/fsdp_cpu.py OUT_DIR TOKENIZER_DIR   # 2 ranks; Lightning starts rank 1 by re-running this

Lightning refuses FSDP without CUDA (an exact-type check in its accelerator connector) and
torch's FSDP must be told `device_id=cpu` on a CPU; `CPUFSDPStrategy` does both and nothing
else: wrapping by our policies, sharded gradients and their clipping, the optimizer's
parameter groups, activation checkpointing and full-state-dict gathering are the real ones.
"""

from __future__ import annotations

import json
import sys
from functools import partial
from pathlib import Path
from unittest import mock

import lightning as L
import torch
from lightning.pytorch.strategies import FSDPStrategy
from torch.distributed.fsdp import FullyShardedDataParallel

from minimind.model import MiniMindConfig
from minimind.training.callbacks import SampleGenerationCallback
from minimind.training.distributed import block_checkpoint_policy, block_wrap_policy, full_model
from minimind.training.module import MiniMindModule
from minimind.training.optim import constant

CONFIG = MiniMindConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                        intermediate_size=128, vocab_size=400, max_position_embeddings=64)
STEPS, RANKS, BATCH, SEQ = 4, 2, 2, 16
# Plain SGD: an update is the clipped gradient itself (Adam would normalise a wrong clipping away).
CLIP, LR, WEIGHT_DECAY = 0.05, 1.0, 0.1


class _CPUFSDP(FullyShardedDataParallel):
    def __init__(self, *args, device_id=None, **kwargs):
        super().__init__(*args, device_id=device_id if device_id is not None else torch.device("cpu"), **kwargs)


class CPUFSDPStrategy(FSDPStrategy):
    def _setup_model(self, model):
        with mock.patch("torch.distributed.fsdp.FullyShardedDataParallel", _CPUFSDP):
            return super()._setup_model(model)


def rank_batches() -> list[dict[str, torch.Tensor]]:
    """Item i goes to rank i % RANKS (see `Batches`): one step = RANKS items."""
    g = torch.Generator().manual_seed(0)
    ids = [torch.randint(3, CONFIG.vocab_size, (BATCH, SEQ), generator=g) for _ in range(STEPS * RANKS)]
    return [{"input_ids": x, "labels": x} for x in ids]


def global_batches() -> list[dict[str, torch.Tensor]]:
    """The same steps in one process: each step's items side by side."""
    items = rank_batches()
    steps = [torch.cat([items[s * RANKS + r]["input_ids"] for r in range(RANKS)]) for s in range(STEPS)]
    return [{"input_ids": x, "labels": x} for x in steps]


def make_module(activation_checkpointing: bool = False) -> MiniMindModule:
    torch.manual_seed(0)
    return MiniMindModule(CONFIG, optimizer=partial(torch.optim.SGD, lr=LR), weight_decay=WEIGHT_DECAY,
                          activation_checkpointing=activation_checkpointing, scheduler=constant)


class Batches(L.LightningDataModule):
    """Fixed batches, item i to rank i % world size, in order (no sampler added: use_distributed_sampler=False)."""

    def __init__(self, batches, tokenizer=None):
        super().__init__()
        self.batches, self.tokenizer = batches, tokenizer

    def train_dataloader(self):
        mine = self.batches[self.trainer.global_rank::self.trainer.world_size]
        return torch.utils.data.DataLoader(mine, batch_size=None, shuffle=False)

    def val_dataloader(self):
        return torch.utils.data.DataLoader(self.batches[:RANKS], batch_size=None, shuffle=False)


def trainer_kwargs() -> dict:
    return dict(max_steps=STEPS, gradient_clip_val=CLIP, logger=False, enable_checkpointing=False,
                use_distributed_sampler=False,
                enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0, log_every_n_steps=1)


class Probe(L.Callback):
    """What the first optimizer step saw: the parameter groups (summed over ranks), the logged norm."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if batch_idx:
            return
        optimizer = trainer.optimizers[0]
        sizes = torch.tensor([float(sum(p.numel() for p in g["params"])) for g in optimizer.param_groups])
        if torch.distributed.is_initialized():
            torch.distributed.all_reduce(sizes)
        self.groups = [(g["weight_decay"], int(n)) for g, n in zip(optimizer.param_groups, sizes)]
        self.grad_norm = trainer.callback_metrics["train/grad_norm"].item()
        self.wrapped = sorted({type(m).__name__ for m in pl_module.model.model.layers})  # _CPUFSDP is FSDP
        self.checkpointed = sum(type(m).__name__ == "CheckpointWrapper" for m in pl_module.modules())
        self.model_checkpoints_itself = pl_module.model.model.gradient_checkpointing


def main(out: Path, tokenizer_dir: str) -> None:
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast.from_pretrained(tokenizer_dir)
    probe = Probe()
    strategy = CPUFSDPStrategy(auto_wrap_policy=block_wrap_policy(), state_dict_type="full",
                               activation_checkpointing_policy=block_checkpoint_policy(True))
    samples = SampleGenerationCallback(["the"], max_new_tokens=4, output_file=str(out / "samples.md"),
                                       print_samples=False)
    trainer = L.Trainer(accelerator="cpu", devices=RANKS, strategy=strategy, callbacks=[probe, samples],
                        val_check_interval=2, limit_val_batches=1, **trainer_kwargs())
    module = make_module(activation_checkpointing=True)
    trainer.fit(module, datamodule=Batches(rank_batches(), tokenizer))
    model = full_model(trainer, module)  # every rank takes part
    if trainer.is_global_zero:
        torch.save(model.state_dict(), out / "full_model.pt")
        (out / "probe.json").write_text(json.dumps(
            {"groups": probe.groups, "grad_norm": probe.grad_norm, "wrapped": probe.wrapped,
             "checkpointed": probe.checkpointed, "model_checkpoints_itself": probe.model_checkpoints_itself}))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
