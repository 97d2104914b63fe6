"""Checkpoint files: telling their kinds apart, reading them safely, writing upstream's form.

Three kinds, told apart by the path:

* a Lightning checkpoint (`*.ckpt`, or a training run dir: its `checkpoints/last.ckpt`),
  whose hyperparameters hold the model config;
* upstream MiniMind weights (`*.pth`, or a folder holding one; MiniMind2 or minimind-3
  layout, fp16 or fp32): a bare `{name: tensor}` state dict;
* a Hugging Face directory (`config.json` + `model.safetensors`).

Safety: `.ckpt`/`.pth`/`.bin` files are read with `torch.load(weights_only=True)`, which
refuses anything but tensors and plain containers (a tampered pickle cannot run code), and
Hugging Face weights with safetensors. A file that is not a checkpoint, is cut short, or
holds something else gets a `CheckpointError` saying which.
"""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from minimind.errors import CheckpointError
from minimind.files import atomic_torch_save
from minimind.model.lora import ADAPTER_KEY
from minimind.runs import LAST_CHECKPOINT

HF_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
MINIMIND_CONFIG = "minimind_config.json"  # a .pth's shape, written beside it by `minimind.export format=minimind`


def safe_torch_load(path: str | Path, mmap: bool = False) -> Any:
    """`torch.load` that only accepts tensors and plain containers; every failure is a `CheckpointError`.

    mmap: map the file instead of reading it (cheap when only a few entries are needed)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist or is not a file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes): it was never written completely; use another checkpoint")
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap and zipfile.is_zipfile(path))
    except pickle.UnpicklingError as error:
        text = str(error)
        if "Weights only load failed" in text or "GLOBAL" in text:
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            detail = next((line for line in lines if "GLOBAL" in line or "Unsupported" in line), lines[-1])
            raise CheckpointError(
                f"refusing to load {path}: it holds Python objects other than tensors and plain containers, "
                "and unpickling them could run arbitrary code. MiniMind checkpoints (.ckpt, .pth) never need "
                f"that; only a tampered or foreign file does, so it is not loaded. (torch: {detail})") from None
        raise CheckpointError(f"{path} is not a torch checkpoint ({_first_line(error)})") from None
    except (RuntimeError, EOFError, OSError, KeyError, ValueError, IndexError, TypeError) as error:
        text = str(error)
        if isinstance(error, EOFError) or "central directory" in text or "zip archive" in text:
            raise CheckpointError(f"{path} is truncated or corrupt (torch cannot read it to the end): it was "
                                  "not written completely or was damaged in transfer; use another checkpoint "
                                  "or copy it again") from None
        raise CheckpointError(f"{path} is not a checkpoint written by torch.save "
                              f"({type(error).__name__}: {_first_line(error)})") from None


def _first_line(error: BaseException) -> str:
    return next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)


def checkpoint_kind(path: str | Path, what: str = "ckpt") -> tuple[str, Path]:
    """(kind, the file or directory to read) for `ckpt=PATH`: kind is "lightning", "pth" or "hf"."""
    path = Path(path).expanduser()
    if not path.exists():
        raise CheckpointError(f"{what}={str(path)!r} does not exist")
    if path.is_dir():
        if (path / "config.json").is_file() and any((path / n).is_file() for n in HF_WEIGHTS):
            return "hf", path
        last = path / LAST_CHECKPOINT
        if last.is_file():  # a training run dir
            return "lightning", last
        weights = sorted(path.glob("*.pth"))
        if len(weights) == 1:  # what `minimind.export format=minimind` writes, or a run dir's final .pth
            return "pth", weights[0]
        raise CheckpointError(
            f"{what}={str(path)!r} is a directory but neither a Hugging Face model (config.json + "
            f"{' or '.join(HF_WEIGHTS)}) nor a training run (checkpoints/last.ckpt) nor a folder with one .pth")
    if path.suffix == ".ckpt":
        return "lightning", path
    if path.suffix in (".pth", ".pt", ".bin"):
        return "pth", path
    if path.suffix == ".safetensors":
        return "hf", path.parent
    raise CheckpointError(f"{what}={str(path)!r}: expected a .ckpt, a .pth, a Hugging Face directory or a run dir")


def lightning_state(ckpt: Any, path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(model config dict, model state dict) of a MiniMindModule checkpoint."""
    hparams = ckpt.get("hyper_parameters") if isinstance(ckpt, dict) else None
    if not isinstance(hparams, dict) or "model_config" not in hparams or "state_dict" not in ckpt:
        raise CheckpointError(f"{path} is not a MiniMind Lightning checkpoint (no hyper_parameters.model_config "
                              "or state_dict); for upstream weights use a .pth file")
    state = {}
    for key, value in ckpt["state_dict"].items():
        if key.startswith("model."):
            state[key[len("model."):].replace("_orig_mod.", "")] = value
    return dict(hparams["model_config"]), state


def pth_state(path: Path) -> dict[str, torch.Tensor]:
    """The `{name: tensor}` state dict of an upstream-style .pth."""
    state = safe_torch_load(path)
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        hint = (" (it looks like a Lightning checkpoint: name it .ckpt)" if isinstance(state, dict)
                and "state_dict" in state else "")
        raise CheckpointError(f"{path} is not a state dict of tensors (an upstream MiniMind .pth is "
                              f"{{name: tensor}}){hint}")
    if all(ADAPTER_KEY.match(k.removeprefix("module.")) for k in state):
        raise CheckpointError(f"{path} is a LoRA adapter (only `<module>.lora.A/B.weight`), not a model: give the "
                              f"model it was trained on and the adapter as lora=, e.g. ckpt=full_sft_512.pth "
                              f"lora={path}")
    return state


def hf_state(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        if (folder / "model.safetensors").is_file():
            return load_file(folder / "model.safetensors")
        if (folder / "model.safetensors.index.json").is_file():
            index = json.loads((folder / "model.safetensors.index.json").read_text())
            state: dict[str, torch.Tensor] = {}
            for shard in sorted(set(index["weight_map"].values())):
                state.update(load_file(folder / shard))
            return state
    except (SafetensorError, OSError, ValueError, KeyError) as error:
        raise CheckpointError(f"{folder}: the safetensors weights cannot be read ({_first_line(error)}); "
                              "the file is truncated or not safetensors") from None
    return safe_torch_load(folder / "pytorch_model.bin")


def save_upstream_pth(model: torch.nn.Module, path: str | Path, dtype: torch.dtype = torch.float16) -> Path:
    """Write the state dict as upstream MiniMind releases it: `{name: tensor.half()}` in a .pth file."""
    state = {k: v.detach().to("cpu", dtype) for k, v in model.state_dict().items()}
    return atomic_torch_save(state, path)


def upstream_pth_name(config, stage: str = "pretrain") -> str:
    """Upstream's file naming: `pretrain_512.pth`, `full_sft_640_moe.pth`."""
    return f"{stage}_{config.hidden_size}{'_moe' if config.use_moe else ''}.pth"
