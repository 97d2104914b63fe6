"""Lightning's precision names, read in one place.

`trainer.precision` takes Lightning's strings (`32-true`, `bf16-mixed`, `16-mixed`,
`bf16-true`, ...) and their short forms (`32`, `bf16`, `16`); the tools take dtype names
(`float32`, `bfloat16`, `fp16`, ...). `parse_precision` turns any of them into what the
code needs: the dtype parameters are kept in, the dtype matmuls run in (autocast), and
whether fp16 loss scaling is involved.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from minimind.errors import ConfigurationError

_ALIASES = {
    "32": "32-true", "32-true": "32-true", "fp32": "32-true", "float32": "32-true",
    "64": "64-true", "64-true": "64-true",
    "bf16": "bf16-mixed", "bf16-mixed": "bf16-mixed",
    "16": "16-mixed", "16-mixed": "16-mixed", "fp16": "16-mixed",
    "bf16-true": "bf16-true", "bfloat16": "bf16-true",
    "16-true": "16-true", "float16": "16-true",
}
_DTYPES = {"32": torch.float32, "64": torch.float64, "bf16": torch.bfloat16, "16": torch.float16}


@dataclass(frozen=True)
class Precision:
    name: str  # Lightning's canonical string, e.g. "bf16-mixed"

    @property
    def compute_dtype(self) -> torch.dtype:
        """The dtype matrix multiplications run in (what the device's peak FLOP/s is quoted for)."""
        return _DTYPES[self.name.split("-")[0]]

    @property
    def mixed(self) -> bool:
        return self.name.endswith("-mixed")

    @property
    def param_dtype(self) -> torch.dtype:
        """The dtype the weights are kept in: float32 under mixed precision, else the compute dtype."""
        return torch.float32 if self.mixed else self.compute_dtype

    @property
    def is_fp16(self) -> bool:
        return self.compute_dtype == torch.float16

    @property
    def is_bf16(self) -> bool:
        return self.compute_dtype == torch.bfloat16

    def autocast(self, device: torch.device | str) -> contextlib.AbstractContextManager:
        """The autocast context the Trainer runs forward passes in (none unless mixed)."""
        if not self.mixed:
            return contextlib.nullcontext()
        return torch.autocast(torch.device(device).type, dtype=self.compute_dtype)


def parse_precision(value: object) -> Precision:
    """Any of Lightning's precision strings or a dtype name -> `Precision`; unknown ones are refused."""
    key = str(value).strip().lower().removeprefix("torch.")
    if key not in _ALIASES:
        raise ConfigurationError(f"precision {value!r} is unknown: use one of 32-true, bf16-mixed, 16-mixed, "
                                 "bf16-true, 16-true (or precision=fp32 / bf16 / fp16 / bf16-true)")
    return Precision(_ALIASES[key])
