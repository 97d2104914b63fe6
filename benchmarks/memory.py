"""Peak memory of one training step, each setting in a fresh process so peaks never mix.

On GPU: `torch.cuda.max_memory_allocated`. On CPU: the rise of the process's resident-memory
high-water mark (VmHWM, reset through /proc/self/clear_refs) over one forward + backward +
optimizer step, measured after a warm-up step so the optimizer state already exists; what
remains is what a step adds: activations, gradients and temporaries.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def step_peak_mb(preset: str, batch_size: int, seq_len: int, precision: str, checkpointing: bool,
                 device: str, backend: str = "sdpa") -> float:
    args = json.dumps(dict(preset=preset, batch_size=batch_size, seq_len=seq_len, precision=precision,
                           checkpointing=checkpointing, device=device, backend=backend))
    out = subprocess.run([sys.executable, str(HERE / "memory.py"), args], capture_output=True, text=True, cwd=HERE)
    if out.returncode != 0:  # e.g. out of memory: the caller reports the cell as failed and goes on
        last = (out.stderr.strip().splitlines() or [f"exit status {out.returncode}"])[-1]
        raise RuntimeError(f"memory.py {preset} {precision}: {last[:200]}")
    return float(out.stdout.strip().splitlines()[-1])


def _rss_high_water_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def _measure(preset, batch_size, seq_len, precision, checkpointing, device, backend) -> float:
    import torch

    from common import autocast_dtype
    from minimind.model import MiniMindConfig, MiniMindForCausalLM

    device = torch.device(device)
    cfg = MiniMindConfig.from_preset(preset, attn_implementation=backend)
    torch.manual_seed(0)
    model = MiniMindForCausalLM(cfg).to(device)
    if precision == "bf16-true":
        model = model.to(torch.bfloat16)
    model.gradient_checkpointing_enable(checkpointing)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ids = torch.randint(0, cfg.vocab_size, (batch_size, seq_len), device=device)
    dtype = autocast_dtype(precision)

    def step():
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            out = model(ids, labels=ids)
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()  # optimizer state allocated; allocator warmed
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        step()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    Path("/proc/self/clear_refs").write_text("5")
    base = _rss_kib()
    step()
    return (_rss_high_water_kib() - base) / 1024


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    print(_measure(**json.loads(sys.argv[1])))
