"""Reading and writing weights safely: never unpickle arbitrary objects, never leave half a file.

- Loads use `torch.load(weights_only=True)` (tensors and plain containers only) or
  safetensors, so a tampered checkpoint cannot run code.
- Writes go to a temporary file in the same folder, are flushed to disk, then renamed over
  the target: a crash leaves either the old file or the new one, never a truncated one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_upstream_pth(model: torch.nn.Module, path: str | Path, dtype: torch.dtype = torch.float16) -> Path:
    """Write the state dict as upstream MiniMind releases it: `{name: tensor.half()}` in a .pth file."""
    state = {k: v.detach().to("cpu", dtype) for k, v in model.state_dict().items()}
    return atomic_torch_save(state, path)


def upstream_pth_name(config, stage: str = "pretrain") -> str:
    """Upstream's file naming: `pretrain_512.pth`, `full_sft_640_moe.pth`."""
    return f"{stage}_{config.hidden_size}{'_moe' if config.use_moe else ''}.pth"
