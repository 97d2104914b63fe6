"""Measures what a run summary reports: steady-state tokens/s, MFU, peak memory, wall time.

Throughput counts training steps only, measured end to end (data loading included): the
first `warmup_steps` (compilation, allocator and data-loader start-up) and all validation
time are left out, so the figure is the rate a longer run would sustain. No device sync is
added per step; over many steps the asynchronous queue's depth does not matter.
"""

from __future__ import annotations

import resource
import time
from pathlib import Path

import torch
from lightning.fabric.utilities.throughput import get_available_flops
from lightning.pytorch import Callback


class RunStatsCallback(Callback):
    def __init__(self, warmup_steps: int = 5):
        self.warmup_steps = warmup_steps
        self.start_time = time.perf_counter()
        self.steady_tokens = 0
        self.steady_seconds = 0.0
        self.steady_flops = 0.0
        self.available_flops: float | None = None
        self._last_step_end: float | None = None
        self._steps_seen = 0

    def on_train_start(self, trainer, pl_module) -> None:
        precision = str(trainer.precision)
        dtype = torch.bfloat16 if "bf16" in precision else torch.float16 if precision.startswith("16") else torch.float32
        self.available_flops = get_available_flops(trainer.strategy.root_device, dtype)
        if trainer.strategy.root_device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(trainer.strategy.root_device)
        else:
            _reset_peak_rss()  # sweep jobs may share a process: measure this job's peak only

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        # End to end of consecutive steps: data loading counts, as it does for the run's length.
        now = time.perf_counter()
        self._steps_seen += 1
        if self._last_step_end is not None and self._steps_seen > self.warmup_steps:
            self.steady_seconds += now - self._last_step_end
            self.steady_tokens += batch["input_ids"].numel() * trainer.world_size
            self.steady_flops += pl_module.flops_per_batch * trainer.world_size
        self._last_step_end = now

    def on_validation_start(self, trainer, pl_module) -> None:
        self._last_step_end = None  # validation is not training time: skip the step that spans it

    def tokens_per_sec(self) -> float | None:
        return self.steady_tokens / self.steady_seconds if self.steady_seconds > 0 else None

    def mfu(self, world_size: int = 1) -> float | None:
        """Achieved FLOP/s over the devices' peak (None where Lightning knows no peak, e.g. CPUs)."""
        if not self.available_flops or self.steady_seconds <= 0:
            return None
        return self.steady_flops / self.steady_seconds / (self.available_flops * world_size)

    @staticmethod
    def peak_memory_mb(device: torch.device) -> float:
        """Peak CUDA memory allocated on GPU; peak resident memory of this process on CPU."""
        if device.type == "cuda":
            return torch.cuda.max_memory_allocated(device) / 2**20
        return _peak_rss_kib() / 1024

    @staticmethod
    def memory_kind(device: torch.device) -> str:
        return "cuda_max_allocated" if device.type == "cuda" else "process_peak_rss"

    def wall_time_s(self) -> float:
        return time.perf_counter() - self.start_time


def _reset_peak_rss() -> None:
    """Linux lets a process reset its high-water mark of resident memory (VmHWM)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass  # elsewhere the peak covers the whole process


def _peak_rss_kib() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
