"""What a device can do at most: the peak FLOP/s that every MFU figure divides by.

MFU (model FLOPs utilisation) is the training FLOP/s a run achieves over the device's
peak. For GPUs the peak is the vendor's *dense* tensor-core figure for the precision the
matmuls run in (datasheets often print the 2:4-sparse figure, twice as high, with an
asterisk; that is not what a dense model can reach). Devices are recognised from the name
CUDA reports (`torch.cuda.get_device_name()`: "NVIDIA H200", "NVIDIA H100 80GB HBM3",
"NVIDIA A100-SXM4-80GB", ...). CPUs have no datasheet figure that means much, so their
peak is measured: a short matmul benchmark, run once per machine, thread count and dtype,
and cached under `minimind.paths.cache_dir()`.

    peak_flops(torch.device("cuda"), torch.bfloat16)   # 989.4e12 on an H100 SXM or H200
    peak_flops(torch.device("cpu"), torch.float32)     # measured here (about 0.5 s), then cached
"""

from __future__ import annotations

import json
import logging
import platform
import re
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from filelock import FileLock

from minimind.files import atomic_write_text
from minimind.paths import cache_dir

log = logging.getLogger(__name__)

T = 1e12


@dataclass(frozen=True)
class DevicePeak:
    """Dense peak FLOP/s of one device, per matmul precision (None: not supported natively)."""

    name: str
    fp32: float  # plain FP32 (CUDA cores): torch's default float32 matmul precision, "highest"
    tf32: float | None  # float32 matmuls with torch.set_float32_matmul_precision("high"/"medium")
    bf16: float | None
    fp16: float | None
    source: str


# Dense figures from NVIDIA's datasheets and architecture whitepapers; tensor-core figures
# with FP32 accumulation (what torch uses), without sparsity.
_A100 = DevicePeak("A100", 19.5 * T, 156 * T, 312 * T, 312 * T, "A100 datasheet (SXM4 and PCIe alike)")
_H100_SXM = DevicePeak("H100 SXM", 66.9 * T, 494.7 * T, 989.4 * T, 989.4 * T, "H100 datasheet, SXM5")
_H100_PCIE = DevicePeak("H100 PCIe", 51.2 * T, 378 * T, 756 * T, 756 * T, "H100 datasheet, PCIe")
_H100_NVL = DevicePeak("H100 NVL", 60 * T, 417.5 * T, 835.5 * T, 835.5 * T, "H100 NVL datasheet (per GPU)")
_H200 = DevicePeak("H200 SXM", 67 * T, 494.7 * T, 989.4 * T, 989.4 * T, "H200 datasheet, SXM")
_H200_NVL = DevicePeak("H200 NVL", 60 * T, 417.5 * T, 835.5 * T, 835.5 * T, "H200 datasheet, NVL")

# (pattern searched in the lower-cased CUDA device name, peak); the first match wins, so
# the more specific names come first ("h100 nvl" before "h100", "a10g" and "a100" apart).
PEAKS: list[tuple[str, DevicePeak]] = [
    (r"\bb200\b", DevicePeak("B200", 80 * T, 1100 * T, 2250 * T, 2250 * T, "HGX B200 datasheet (per GPU)")),
    (r"\bh200\b.*\bnvl\b", _H200_NVL),
    (r"\bh200\b", _H200),
    (r"\b(h100|h800)\b.*\bnvl\b", _H100_NVL),
    (r"\b(h100|h800)\b.*\bpcie\b", _H100_PCIE),
    (r"\b(h100|h800|gh200)\b", _H100_SXM),  # "NVIDIA H100 80GB HBM3", "NVIDIA GH200 480GB"
    (r"\b(a100|a800)\b", _A100),  # "NVIDIA A100-SXM4-80GB", "NVIDIA A100 80GB PCIe"
    (r"\bl40s\b", DevicePeak("L40S", 91.6 * T, 183 * T, 362.05 * T, 362.05 * T, "L40S datasheet")),
    (r"\bl40\b", DevicePeak("L40", 90.5 * T, 90.5 * T, 181 * T, 181 * T, "L40 datasheet")),
    (r"\bl4\b", DevicePeak("L4", 30.3 * T, 60 * T, 121 * T, 121 * T, "L4 datasheet")),
    (r"\ba10g\b", DevicePeak("A10G", 31.2 * T, 62.5 * T, 125 * T, 125 * T,
                             "AWS's A10 variant; NVIDIA publishes no separate sheet: the A10's figures")),
    (r"\ba10\b", DevicePeak("A10", 31.2 * T, 62.5 * T, 125 * T, 125 * T, "A10 datasheet")),
    (r"\ba40\b", DevicePeak("A40", 37.4 * T, 74.8 * T, 149.7 * T, 149.7 * T, "A40 datasheet")),
    (r"\brtx a6000\b", DevicePeak("RTX A6000", 38.7 * T, 77.4 * T, 154.8 * T, 154.8 * T, "RTX A6000 datasheet")),
    (r"\brtx 4090\b", DevicePeak("RTX 4090", 82.6 * T, 82.6 * T, 165.2 * T, 165.2 * T, "Ada whitepaper")),
    (r"\brtx 4080\b", DevicePeak("RTX 4080", 48.7 * T, 48.7 * T, 97.5 * T, 97.5 * T, "Ada whitepaper")),
    (r"\brtx 3090 ti\b", DevicePeak("RTX 3090 Ti", 40 * T, 40 * T, 80 * T, 80 * T, "GA102 whitepaper")),
    (r"\brtx 3090\b", DevicePeak("RTX 3090", 35.6 * T, 35.6 * T, 71 * T, 71 * T, "GA102 whitepaper")),
    (r"\bv100s\b", DevicePeak("V100S", 16.4 * T, None, None, 130 * T, "V100S datasheet")),
    (r"\bv100\b.*\bpcie\b", DevicePeak("V100 PCIe", 14 * T, None, None, 112 * T, "V100 datasheet")),
    (r"\bv100\b", DevicePeak("V100 SXM2", 15.7 * T, None, None, 125 * T, "V100 datasheet")),
    (r"\bt4\b", DevicePeak("T4", 8.1 * T, None, None, 65 * T, "T4 datasheet")),
]


def device_peak(device_name: str) -> DevicePeak | None:
    """The table's entry for a CUDA device name, or None for a device it does not know."""
    name = device_name.lower()
    return next((peak for pattern, peak in PEAKS if re.search(pattern, name)), None)


def _precision_key(dtype: torch.dtype) -> str:
    if dtype == torch.bfloat16:
        return "bf16"
    if dtype == torch.float16:
        return "fp16"
    if dtype == torch.float32:
        return "fp32" if torch.get_float32_matmul_precision() == "highest" else "tf32"
    raise ValueError(f"no peak FLOP/s for {dtype}: use float32, bfloat16 or float16")


def peak_flops(device: torch.device | str, dtype: torch.dtype) -> float | None:
    """Dense peak FLOP/s of `device` for matmuls in `dtype`: the table for GPUs, measured for CPUs.
    None where it is unknown (a GPU missing from `PEAKS`, or a precision the device lacks).

    On a CPU the peak is the faster of `dtype`'s and float32's measured matmuls: a CPU without bf16
    units can do float32's FLOP/s, and its bf16 matmul kernel (94 times slower than fp32 on this
    project's AMD EPYC test machine) is beaten by autocast's mix of kernels, so an MFU above 100%
    would follow from dividing by it."""
    device = torch.device(device)
    if device.type == "cpu":
        return max(cpu_peak_flops(dtype), cpu_peak_flops(torch.float32))
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    peak = device_peak(name)
    if peak is None:
        log.info("no peak FLOP/s known for %r: MFU is left empty (add it to minimind.hardware.PEAKS)", name)
        return None
    return getattr(peak, _precision_key(dtype))


# --- CPUs: measured ---------------------------------------------------------------------------

CPU_PEAK_FILE = "cpu-peak-flops.json"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown cpu"


def cpu_peak_flops(dtype: torch.dtype = torch.float32, cache: Path | None = None) -> float:
    """This machine's matmul FLOP/s in `dtype` with torch's current thread count: measured once
    (about half a second) and kept in `<cache_dir>/cpu-peak-flops.json`, keyed by CPU model,
    threads, dtype and torch version, so every MFU figure of this machine uses the same number."""
    threads = torch.get_num_threads()
    key = f"{cpu_name()} | {threads} threads | {str(dtype).removeprefix('torch.')} | torch {torch.__version__}"
    path = (cache or cache_dir()) / CPU_PEAK_FILE
    cached = _read_json(path).get(key)
    if isinstance(cached, (int, float)) and cached > 0:
        return float(cached)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):  # ranks and sweep jobs starting together measure one at a time
        known = _read_json(path)
        if isinstance(known.get(key), (int, float)) and known[key] > 0:
            return float(known[key])
        known[key] = peak = measure_matmul_flops(torch.device("cpu"), dtype)
        atomic_write_text(path, json.dumps(known, indent=2, sort_keys=True) + "\n")
    log.info("measured this CPU's matmul peak: %.1f GFLOP/s (%s); cached in %s", peak / 1e9, key, path)
    return peak


SLOW_CPU_PRECISION = 4  # matmuls this many times slower than float32's: the run is warned about


def cpu_slowdown(dtype: torch.dtype) -> float:
    """How many times slower this CPU's matmuls are in `dtype` than in float32 (both measured once and cached):
    about 1 where the CPU has units for it (bf16 with AMX or AVX512-BF16), tens of times where it has not."""
    return cpu_peak_flops(torch.float32) / cpu_peak_flops(dtype)


def measure_matmul_flops(device: torch.device, dtype: torch.dtype, repeats: int = 5, min_seconds: float = 0.05) -> float:
    """Best FLOP/s of square matmuls in `dtype` over `repeats` timed rounds of at least `min_seconds`.
    The size grows from 256 to at least 1024 (smaller matmuls stay below the peak), and on until one
    matmul takes a few milliseconds; a slow path (bf16 on a CPU without bf16 units) stops the growth
    as soon as one matmul takes `min_seconds`. The best round counts, so that other work on a shared
    machine lowers the figure as little as possible."""
    largest = 8192 if device.type == "cuda" else 2048
    size = 256
    # A generator of its own: a run that measures the peak (the first on a machine) must draw the same
    # random numbers (initialisation, dropout, data order) as one that reads it from the cache.
    generator = torch.Generator(device).manual_seed(0)
    while True:
        a = torch.randn(size, size, device=device, generator=generator).to(dtype)
        b = torch.randn(size, size, device=device, generator=generator).to(dtype)
        _time_matmuls(a, b, 1)  # warm-up: thread pools, kernels
        seconds = _time_matmuls(a, b, 1)
        if (seconds >= min_seconds / 5 and size >= 1024) or seconds >= min_seconds or size >= largest:
            break
        size *= 2
    iterations = max(1, round(min_seconds / max(seconds, 1e-9)))
    return max(2 * size**3 * iterations / _time_matmuls(a, b, iterations) for _ in range(repeats))


def _time_matmuls(a: torch.Tensor, b: torch.Tensor, iterations: int) -> float:
    _synchronize(a.device)
    start = time.perf_counter()
    for _ in range(iterations):
        a @ b
    _synchronize(a.device)
    return time.perf_counter() - start


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def gpu_has_bf16(device: torch.device | int | None = None) -> bool:
    """Native bf16 matmuls (Ampere, compute capability 8.0, and newer); `torch.cuda.is_bf16_supported()`
    also says yes where bf16 is only emulated (V100, T4), slowly."""
    return torch.cuda.is_available() and torch.cuda.get_device_capability(device) >= (8, 0)


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
