"""The run's one measurement of speed and cost: tokens/s, MFU, peak memory, wall time.

Logged as `perf/tokens_per_sec` and `perf/mfu` every `trainer.log_every_n_steps` (over the
steps since the last log, with `perf/wall_time_s`: seconds since the run started) and
summarised in `summary.json` as the steady state: training steps only, measured end to end
(data loading included), the first `warmup_steps` (compilation, allocator and data-loader
start-up) and all validation time left out, so the figure is the rate a longer run would
sustain. No device synchronisation is added: the host's clock runs ahead of an asynchronous
GPU by at most the queue's depth, which a window of steps averages out (and logging the loss
every few steps syncs anyway).
FLOPs per token come from `minimind.model.flops` (the model's own formula); the peak they are
divided by for MFU from `minimind.hardware.peak_flops` (dense datasheet figures for GPUs, a
measured matmul peak for CPUs).
"""

from __future__ import annotations

import logging
import resource
import time
from pathlib import Path

import torch
from lightning.pytorch import Callback

from minimind.hardware import SLOW_CPU_PRECISION, cpu_slowdown, peak_flops
from minimind.model.flops import training_flops_per_token
from minimind.precision import parse_precision

log = logging.getLogger(__name__)


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
        self._window = [0, 0.0, 0.0]  # tokens, seconds, flops since the last log

    def on_train_start(self, trainer, pl_module) -> None:
        device = trainer.strategy.root_device
        dtype = parse_precision(trainer.precision).compute_dtype
        self.available_flops = peak_flops(device, dtype)
        if device.type == "cpu" and dtype != torch.float32 and (slowdown := cpu_slowdown(dtype)) > SLOW_CPU_PRECISION:
            log.warning("trainer.precision=%s on this CPU: its %s matmuls measured %.0f times slower than float32's "
                        "(no %s units), so this run will be several times slower than with precision=fp32",
                        trainer.precision, str(dtype).removeprefix("torch."), slowdown,
                        str(dtype).removeprefix("torch."))
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        else:
            _reset_peak_rss()  # sweep jobs may share a process: measure this job's peak only

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        # End to end of consecutive steps: data loading counts, as it does for the run's length.
        now = time.perf_counter()
        self._steps_seen += 1
        if self._last_step_end is not None and self._steps_seen > self.warmup_steps:
            input_ids = batch["input_ids"]
            tokens = pl_module.objective.batch_tokens(batch) * trainer.world_size  # what the model saw
            flops = training_flops_per_token(pl_module.config, input_ids.shape[1]) * tokens
            seconds = now - self._last_step_end
            self.steady_seconds += seconds
            self.steady_tokens += tokens
            self.steady_flops += flops
            self._window = [self._window[0] + tokens, self._window[1] + seconds, self._window[2] + flops]
        self._last_step_end = now
        if trainer.global_step % max(1, trainer.log_every_n_steps) == 0 and self._window[1] > 0:
            tokens, seconds, flops = self._window
            # wall time since the run started: the x axis of `minimind.compare`'s loss-against-time plot
            values = {"perf/tokens_per_sec": tokens / seconds, "perf/wall_time_s": now - self.start_time}
            if self.available_flops:
                values["perf/mfu"] = flops / seconds / (self.available_flops * trainer.world_size)
            pl_module.log_dict(values, on_step=True, on_epoch=False, batch_size=1)
            self._window = [0, 0.0, 0.0]

    def on_validation_start(self, trainer, pl_module) -> None:
        self._last_step_end = None  # validation is not training time: skip the step that spans it

    def tokens_per_sec(self) -> float | None:
        return self.steady_tokens / self.steady_seconds if self.steady_seconds > 0 else None

    def mfu(self, world_size: int = 1) -> float | None:
        """Achieved FLOP/s over the devices' peak (None where no peak is known: a GPU missing from the table)."""
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
