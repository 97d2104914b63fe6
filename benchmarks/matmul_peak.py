"""The machine's measured dense matmul peak, the ceiling for MFU on hardware with no published peak."""

from __future__ import annotations

import torch

from common import Measurement, timed


def matmul_peak(device: torch.device, dtype: torch.dtype, size: int, repeats: int = 5) -> Measurement:
    """FLOP/s of (size x size) @ (size x size) in `dtype`, best effort of the BLAS in use."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    iterations = 10 if device.type == "cuda" else 3
    timed(lambda: a @ b, device)  # warm-up: thread pools, kernels
    result = Measurement(f"matmul {size}x{size} {str(dtype).removeprefix('torch.')}", "FLOP/s")
    for _ in range(repeats):
        seconds = timed(lambda: [a @ b for _ in range(iterations)], device)
        result.values.append(2 * size**3 * iterations / seconds)
    return result
