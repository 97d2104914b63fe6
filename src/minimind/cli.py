"""What every command-line entry point shares: its Hydra app, clean errors, device and dtype choice.

    @hydra_app("generate")          # pkg://minimind.conf/generate.yaml; expected errors end the command
    def main(cfg: DictConfig): ...  # with one line `error: ...` and exit status 1, no traceback

`HYDRA_FULL_ERROR=1` shows the full traceback of expected errors too (Hydra's own switch).
A user's config directory joins the search path with Hydra's `--config-dir DIR` (or
`hydra.searchpath=[file:///DIR]`), so their own `model/`, `experiment/`, ... files are
found beside the packaged ones.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any

import hydra
import torch

from minimind.errors import CheckpointError, MiniMindError, ToolError
from minimind.paths import CONF_SEARCH_PATH
from minimind.runs import command_line_overrides, overridden


def full_errors() -> bool:
    return os.environ.get("HYDRA_FULL_ERROR") == "1"


def error_message(error: BaseException) -> str:
    return f"error: {error}"


def expected_error(error: BaseException) -> MiniMindError | None:
    """The expected error behind `error`, if any: itself, or what it wraps (Hydra's `instantiate`
    wraps an error raised while building an object in an InstantiationException)."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, MiniMindError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def expected_errors(main: Callable) -> Callable:
    """End the command with the message of an expected error (exit status 1) instead of a traceback."""

    @functools.wraps(main)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return main(*args, **kwargs)
        except Exception as error:
            expected = expected_error(error)
            if expected is None or full_errors():
                raise
            print(error_message(expected), file=sys.stderr, flush=True)
            raise SystemExit(1) from None

    return wrapper


def hydra_app(config_name: str) -> Callable[[Callable], Callable]:
    """`@hydra.main` on the packaged config `config_name`, with `expected_errors`."""

    def decorate(main: Callable) -> Callable:
        return hydra.main(version_base="1.3", config_path=CONF_SEARCH_PATH, config_name=config_name)(
            expected_errors(main))

    return decorate


def command_line_model_config(cfg: Any) -> Any | None:
    """`cfg.model` if the user chose it (`model=PRESET` or `model.<field>=...`), else None.

    The tools' configs always hold a `model` (the default preset), but only a choice made on
    the command line should override what a checkpoint's own files say about its shape.
    """
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return cfg.get("model")
    return cfg.model if overridden(command_line_overrides(), "model") else None


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ToolError(f"device={name!r} is not a device: use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ToolError(f"device={name} but no CUDA GPU is visible: use device=cpu (or auto)")
    return device


def pick_dtype(name: str = "auto", device: torch.device | str = "cpu") -> torch.dtype:
    """`auto`: bfloat16 on a GPU that has it, else float32; or float32 | bfloat16 | float16 (or bf16 / fp16)."""
    from minimind.precision import parse_precision

    device = torch.device(device)
    if name == "auto":
        from minimind.hardware import gpu_has_bf16

        cuda_bf16 = device.type == "cuda" and gpu_has_bf16(device)
        return torch.bfloat16 if cuda_bf16 else torch.float32
    try:
        return parse_precision(name).compute_dtype
    except MiniMindError:
        raise CheckpointError(f"dtype={name!r} is unknown: use auto, float32, bfloat16 or float16") from None


def describe(loaded: Any) -> str:
    """One line for the terminal: what was loaded, from where, how big."""
    cfg = loaded.config
    params = loaded.model.num_parameters()
    p = next(loaded.model.parameters())
    return (f"loaded {loaded.kind} checkpoint {loaded.path} ({params / 1e6:.2f}M parameters, "
            f"{cfg.num_hidden_layers} layers x {cfg.hidden_size}, config from {loaded.config_source}) "
            f"on {p.device} as {str(p.dtype).removeprefix('torch.')}")
