"""Peak FLOP/s: the dense table matched on the names CUDA really reports, and the CPU's measured peak."""

import json

import pytest
import torch

from minimind.hardware import CPU_PEAK_FILE, _precision_key, cpu_peak_flops, device_peak, peak_flops

T = 1e12


@pytest.mark.parametrize("name, entry, bf16", [
    ("NVIDIA H200", "H200 SXM", 989.4 * T),  # what an H200 SXM reports (Lightning 2.6 misses it)
    ("NVIDIA H200 NVL", "H200 NVL", 835.5 * T),
    ("NVIDIA H100 80GB HBM3", "H100 SXM", 989.4 * T),
    ("NVIDIA H100 PCIe", "H100 PCIe", 756 * T),
    ("NVIDIA H100 NVL", "H100 NVL", 835.5 * T),
    ("NVIDIA GH200 480GB", "H100 SXM", 989.4 * T),
    ("NVIDIA A100-SXM4-80GB", "A100", 312 * T),
    ("NVIDIA A100-SXM4-40GB", "A100", 312 * T),
    ("NVIDIA A100-PCIE-40GB", "A100", 312 * T),
    ("NVIDIA A100 80GB PCIe", "A100", 312 * T),
    ("NVIDIA A10", "A10", 125 * T),
    ("NVIDIA A10G", "A10G", 125 * T),
    ("NVIDIA L4", "L4", 121 * T),
    ("NVIDIA L40S", "L40S", 362.05 * T),
    ("NVIDIA L40", "L40", 181 * T),
    ("NVIDIA GeForce RTX 4090", "RTX 4090", 165.2 * T),
    ("NVIDIA GeForce RTX 3090", "RTX 3090", 71 * T),
    ("NVIDIA GeForce RTX 3090 Ti", "RTX 3090 Ti", 80 * T),
    ("NVIDIA RTX A6000", "RTX A6000", 154.8 * T),
    ("Tesla V100-SXM2-16GB", "V100 SXM2", None),  # no native bf16
    ("Tesla T4", "T4", None),
])
def test_dense_peak_for_real_device_names(name, entry, bf16):
    peak = device_peak(name)
    assert peak is not None and peak.name == entry
    assert peak.bf16 == bf16
    assert peak.fp32 < (peak.tf32 or peak.fp32 + 1) * 1.01 and peak.fp16 is not None


def test_unknown_devices_have_no_peak():
    assert device_peak("NVIDIA Quadro P1000") is None
    assert device_peak("AMD Radeon Pro W7900") is None


def test_float32_peak_follows_torchs_matmul_precision():
    before = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("highest")
        assert _precision_key(torch.float32) == "fp32"
        torch.set_float32_matmul_precision("high")  # TF32 tensor cores
        assert _precision_key(torch.float32) == "tf32"
    finally:
        torch.set_float32_matmul_precision(before)
    assert _precision_key(torch.bfloat16) == "bf16" and _precision_key(torch.float16) == "fp16"


def test_cpu_peak_is_measured_once_and_cached(tmp_path):
    measured = cpu_peak_flops(torch.float32, cache=tmp_path)
    assert 1e8 < measured < 1e14  # 0.1 GFLOP/s .. 100 TFLOP/s: a plausible CPU
    cache = json.loads((tmp_path / CPU_PEAK_FILE).read_text())
    (key,) = cache
    assert f"{torch.get_num_threads()} threads | float32" in key
    cache[key] = 123e9  # what a later call must read back instead of measuring again
    (tmp_path / CPU_PEAK_FILE).write_text(json.dumps(cache))
    assert cpu_peak_flops(torch.float32, cache=tmp_path) == 123e9


def test_cpu_runs_get_a_peak(private_cache):
    assert peak_flops("cpu", torch.float32) > 0  # so MFU is filled on CPUs too


def test_a_cpu_precision_is_never_given_less_than_float32s_peak(private_cache):
    """bf16 on a CPU without bf16 units: its own matmul kernel is the slow one, the CPU's peak is float32's."""
    fp32, bf16 = cpu_peak_flops(torch.float32), cpu_peak_flops(torch.bfloat16)
    assert peak_flops("cpu", torch.bfloat16) == max(fp32, bf16) and peak_flops("cpu", torch.float32) == fp32


def test_measuring_the_peak_leaves_the_global_rng_alone(tmp_path):
    """The first run on a machine measures the peak, later ones read it: both must train alike."""
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    cpu_peak_flops(torch.float32, cache=tmp_path)
    assert torch.equal(torch.rand(3), expected)
