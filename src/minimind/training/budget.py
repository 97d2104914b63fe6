"""How long a run is, decided once, before anything is built.

A run's length is given by exactly one of `tokens` (the token budget, all ranks
together), `trainer.max_steps` or `trainer.max_epochs`; when none is given it trains on
`default_tokens`. What the user typed on the command line beats what a file they chose
(an experiment or sweep) says, and two lengths given at the same level contradict each
other and are refused. The decision, its source and the tokens per optimizer step are
computed here and handed to the Trainer and the summary, nothing patched afterwards.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from omegaconf import DictConfig

from minimind.errors import ConfigurationError
from minimind.runs import overridden

LENGTH_KEYS = ("tokens", "trainer.max_steps", "trainer.max_epochs")


@dataclass(frozen=True)
class RunBudget:
    length_from: str  # "tokens" | "trainer.max_steps" | "trainer.max_epochs" | "default_tokens"
    tokens_per_step: int  # batch x seq_len x accumulation x world size
    world_size: int
    max_steps: int  # -1 when epochs decide
    max_epochs: int  # -1 when steps decide
    tokens: int | None = None  # the token budget, when tokens decide

    def trainer_kwargs(self) -> dict[str, int]:
        return {"max_steps": self.max_steps, "max_epochs": self.max_epochs}

    def describe(self) -> str:
        if self.length_from == "trainer.max_epochs":
            return f"{self.max_epochs} epoch(s) (trainer.max_epochs)"
        steps = f"{self.max_steps:,} steps of {self.tokens_per_step:,} tokens"
        return f"{steps} ({self.length_from}={self.tokens:,})" if self.tokens else f"{steps} (trainer.max_steps)"


def _given(cfg: DictConfig, key: str) -> bool:
    value = cfg.get("tokens") if key == "tokens" else cfg.trainer.get(key.split(".", 1)[1])
    return value is not None and value != -1


def _count(value: object, key: str) -> int:
    """A token count as typed (2_000_000, 2e6, "2000000") -> int; anything else is refused."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or number != int(number) or number < 1:
        raise ConfigurationError(f"{key}={value} must be a positive whole number of tokens (e.g. {key}=2_000_000)")
    return int(number)


def world_size(trainer: DictConfig) -> int:
    """Processes the Trainer will start (devices x nodes), worked out as Lightning does."""
    from lightning.pytorch.accelerators import CPUAccelerator, CUDAAccelerator, MPSAccelerator

    accelerator = str(trainer.get("accelerator", "auto"))
    if accelerator == "auto":
        accelerator = "cuda" if torch.cuda.is_available() else "mps" if MPSAccelerator.is_available() else "cpu"
    kinds = {"cpu": CPUAccelerator, "gpu": CUDAAccelerator, "cuda": CUDAAccelerator, "mps": MPSAccelerator}
    if accelerator not in kinds:
        raise ConfigurationError(f"trainer.accelerator={accelerator!r}: use auto, cpu, gpu (cuda) or mps")
    kind = kinds[accelerator]
    devices = trainer.get("devices", "auto")
    strategy = trainer.get("strategy", "auto")
    if devices == "auto":
        devices = kind.auto_device_count()
    if isinstance(devices, str) and devices.strip().lstrip("-").isdigit():
        devices = int(devices)
    if kind is CUDAAccelerator and (devices == -1) and not torch.cuda.is_available():
        return 1  # refused by the hardware check with its own message
    try:
        parsed = kind.parse_devices(devices if not hasattr(devices, "__iter__") or isinstance(devices, str)
                                    else list(devices))
    except Exception as error:
        raise ConfigurationError(f"trainer.devices={devices} does not work with trainer.accelerator={accelerator}: "
                                 f"{error}") from None
    count = len(parsed) if isinstance(parsed, (list, tuple)) else int(parsed or 1)
    if isinstance(strategy, str) and strategy.startswith("single"):
        count = 1
    return count * int(trainer.get("num_nodes", 1) or 1)


def plan_budget(cfg: DictConfig, overrides: list[str], world: int) -> RunBudget:
    """Decide the run's length from `cfg` and what the user typed (`overrides`)."""
    given = [k for k in LENGTH_KEYS if _given(cfg, k)]
    typed = [k for k in given if overridden(overrides, k)]
    if len(typed) > 1:
        raise ConfigurationError(
            f"{' and '.join(typed)} were both given on the command line, and each sets the run's length: "
            "give only one (tokens= counts tokens over all ranks; trainer.max_steps= optimizer steps; "
            "trainer.max_epochs= passes over the data)")
    if not typed and len(given) > 1:
        raise ConfigurationError(
            f"the chosen config files set both {' and '.join(given)}, and each sets the run's length: "
            f"remove one from the experiment/sweep file, or choose one on the command line (e.g. {given[0]}=...)")
    length_from = (typed or given or ["default_tokens"])[0]
    data = cfg.data
    accumulate = int(cfg.trainer.get("accumulate_grad_batches") or 1)
    per_step = int(data.batch_size) * int(data.seq_len) * accumulate * world
    if length_from in ("tokens", "default_tokens"):
        tokens = _count(cfg.get(length_from), length_from)
        if tokens < per_step:
            raise ConfigurationError(
                f"{length_from}={tokens:,} is less than one optimizer step ({data.batch_size} x {data.seq_len} x "
                f"{accumulate} accumulated x {world} ranks = {per_step:,} tokens): raise {length_from} or shrink "
                "the batch")
        return RunBudget(length_from, per_step, world, max_steps=math.ceil(tokens / per_step), max_epochs=-1,
                         tokens=tokens)
    if length_from == "trainer.max_steps":
        steps = cfg.trainer.max_steps
        if not isinstance(steps, int) or steps < 1:
            raise ConfigurationError(f"trainer.max_steps={steps} must be a positive integer")
        return RunBudget(length_from, per_step, world, max_steps=steps, max_epochs=-1)
    epochs = cfg.trainer.max_epochs
    if not isinstance(epochs, int) or epochs < 1:
        raise ConfigurationError(f"trainer.max_epochs={epochs} must be a positive integer")
    return RunBudget(length_from, per_step, world, max_steps=-1, max_epochs=epochs)
