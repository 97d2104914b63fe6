"""Training tokens/s: our Lightning module and Trainer against a minimal hand-written loop.

Both train the same model on the same pre-made batches with the same AdamW, gradient clipping
and autocast; only the framework around the step differs. Repeats alternate between the two
so that drift in the machine (thermal, other load) hits both alike.
"""

from __future__ import annotations

import time
from functools import partial

import lightning as L
import torch

from common import Measurement, autocast_dtype, synchronize
from minimind.model import MiniMindConfig, MiniMindForCausalLM
from minimind.training.module import MiniMindModule
from minimind.training.callbacks import RunStatsCallback
from minimind.training.optim import param_groups, warmup_cosine

LR, WEIGHT_DECAY, CLIP = 5e-4, 0.1, 1.0


def batches(cfg: MiniMindConfig, batch_size: int, seq_len: int, count: int, device: torch.device) -> list[dict]:
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(count):
        ids = torch.randint(0, cfg.vocab_size, (batch_size, seq_len), generator=g)
        out.append({"input_ids": ids.to(device), "labels": ids.to(device)})
    return out


def plain_loop(cfg: MiniMindConfig, data: list[dict], warmup: int, precision: str, device: torch.device,
               compile: bool = False) -> float:
    """tokens/s of the loop a user would write by hand (upstream MiniMind's loop, minus logging)."""
    torch.manual_seed(0)
    model = MiniMindForCausalLM(cfg).to(device)
    if compile:
        model.compile()
    optimizer = torch.optim.AdamW(param_groups(model, WEIGHT_DECAY), lr=LR, betas=(0.9, 0.95))
    scheduler = warmup_cosine(optimizer, total_steps=len(data))
    dtype = autocast_dtype(precision)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    start = None
    for step, batch in enumerate(data):
        if step == warmup:
            synchronize(device)
            start = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            out = model(batch["input_ids"], labels=batch["labels"])
            loss = out.loss + out.aux_loss
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        scheduler.step()
    synchronize(device)
    tokens = sum(b["input_ids"].numel() for b in data[warmup:])
    return tokens / (time.perf_counter() - start)


class _Timer(L.Callback):
    def __init__(self, warmup: int):
        self.warmup, self.start = warmup, None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == self.warmup:
            synchronize(pl_module.device)
            self.start = time.perf_counter()

    def on_train_end(self, trainer, pl_module):
        synchronize(pl_module.device)
        self.seconds = time.perf_counter() - self.start


def lightning_loop(cfg: MiniMindConfig, data: list[dict], warmup: int, precision: str, device: torch.device,
                   compile: bool = False) -> float:
    """tokens/s of `MiniMindModule` under a Lightning Trainer, with its real per-step logging and the
    run's throughput/MFU measurement (RunStatsCallback)."""
    torch.manual_seed(0)
    module = MiniMindModule(cfg, optimizer=partial(torch.optim.AdamW, lr=LR, betas=(0.9, 0.95)),
                            weight_decay=WEIGHT_DECAY, compile=compile)
    timer = _Timer(warmup)
    trainer = L.Trainer(accelerator=device.type, devices=1, precision=precision, max_steps=len(data),
                        gradient_clip_val=CLIP, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[timer, RunStatsCallback()],
                        num_sanity_val_steps=0, limit_val_batches=0, log_every_n_steps=10)
    loader = torch.utils.data.DataLoader(data, batch_size=None, shuffle=False)
    trainer.fit(module, train_dataloaders=loader)
    tokens = sum(b["input_ids"].numel() for b in data[warmup:])
    return tokens / timer.seconds


def compare(cfg: MiniMindConfig, batch_size: int, seq_len: int, steps: int, warmup: int, repeats: int,
            precision: str, device: torch.device,
            compile: bool = False) -> tuple[Measurement, Measurement, Measurement]:
    """(plain tokens/s, Lightning tokens/s, Lightning / plain). The ratio is taken per repeat, of two
    runs back to back: a shared machine's speed drifts by more than the difference measured here."""
    data = batches(cfg, batch_size, seq_len, warmup + steps, device)
    suffix = " +compile" if compile else ""
    plain = Measurement(f"plain PyTorch loop{suffix}", "tokens/s")
    ours = Measurement(f"Lightning MiniMindModule{suffix}", "tokens/s")
    ratio = Measurement("Lightning / plain", "")
    for _ in range(repeats):
        plain.values.append(plain_loop(cfg, data, warmup, precision, device, compile))
        ours.values.append(lightning_loop(cfg, data, warmup, precision, device, compile))
        ratio.values.append(ours.values[-1] / plain.values[-1])
    return plain, ours, ratio
