"""LoRA adapters as files, and merging them into their base.

An adapter file has upstream MiniMind's format (`model/model_lora.py`: `save_lora` / `load_lora`):
`{module}.lora.A.weight` (r, in) and `{module}.lora.B.weight` (out, r), fp16, in a `.pth`
(`lora_medical_512.pth`), meaning W' = W + B A. Upstream has no scaling, so a run with
alpha != rank folds its scaling into B when it writes the file: the file means the same in both
projects.

A LoRA run's Lightning checkpoint holds only the adapters (with the optimizer's state) and, in its
hyperparameters, `lora`: the LoRA config, the base file it was trained on and a fingerprint of
the base's weights. `minimind.checkpoints.load` reads the base again, checks the fingerprint (a
base replaced since, e.g. a pretraining run that went on, would silently give other weights), and
merges.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from minimind.checkpoints.files import checkpoint_kind, lightning_state, safe_torch_load
from minimind.checkpoints.mismatch import fold_layers
from minimind.errors import CheckpointError
from minimind.files import atomic_torch_save
from minimind.model.lora import ADAPTER_KEY, LoRAConfig, adapter_state

LORA_HPARAMS = "lora"  # the key of a LoRA run's hyperparameters in its checkpoints


@dataclass
class Adapter:
    state: dict[str, torch.Tensor]  # upstream's names: `{module}.lora.A.weight`, `{module}.lora.B.weight`
    scaling: float  # W' = W + scaling * B A (1 for an upstream-format file)
    source: str  # where it was read, for messages

    def modules(self) -> list[str]:
        return sorted({ADAPTER_KEY.match(k).group(1) for k in self.state if ADAPTER_KEY.match(k)})


def is_adapter_state(state: dict[str, Any]) -> bool:
    return bool(state) and all(ADAPTER_KEY.match(k) for k in state)


def save_adapter(model: torch.nn.Module, path: str | Path, scaling: float = 1.0) -> Path:
    """Write `model`'s adapters as upstream's `save_lora` does (fp16), with `scaling` folded into B."""
    state = {k: (v.detach().float() * scaling if k.endswith(".lora.B.weight") else v.detach()).to("cpu", torch.float16)
             for k, v in adapter_state(model).items()}
    return atomic_torch_save(state, path)


def read_adapter(path: str | Path) -> Adapter:
    """`lora=PATH`: an adapter file in upstream's format, or a LoRA run (its dir or a .ckpt)."""
    kind, file = checkpoint_kind(path, "lora")
    if kind == "lightning":
        checkpoint = safe_torch_load(file)
        _, state = lightning_state(checkpoint, file)
        recorded = checkpoint["hyper_parameters"].get(LORA_HPARAMS)
        if not recorded:
            raise CheckpointError(f"lora={path}: {file} is a full model's checkpoint, not a LoRA run's; give it as "
                                  "ckpt= (or lora= an adapter file, `lora_<name>_<hidden>.pth`)")
        return Adapter(state, LoRAConfig.from_dict(recorded).scaling, str(file))
    if kind != "pth":
        raise CheckpointError(f"lora={path} is a Hugging Face model directory; lora= takes an adapter file "
                              "(`lora_<name>_<hidden>.pth`) or a LoRA run dir")
    state = safe_torch_load(file)
    if isinstance(state, dict):  # upstream's load_lora drops the `module.` prefix DDP adds, so do we
        state = {k.removeprefix("module."): v for k, v in state.items()}
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()) \
            or not is_adapter_state(state):
        raise CheckpointError(f"lora={path}: {file} is not a LoRA adapter (a state dict of `<module>.lora.A.weight`"
                              " and `<module>.lora.B.weight` tensors, as upstream's save_lora writes)")
    return Adapter(state, 1.0, str(file))


def merge_lora(state: dict[str, torch.Tensor], adapter: Adapter, tie_word_embeddings: bool = False
               ) -> dict[str, torch.Tensor]:
    """`state` with W + scaling * B A in place of each adapted W (in float32); refused if it does not fit."""
    problems: list[tuple[str, str]] = []
    parts: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in adapter.state.items():
        match = ADAPTER_KEY.match(key)
        if match is None:
            problems.append((key, ": not `<module>.lora.A.weight` / `.lora.B.weight`"))
        else:
            parts.setdefault(match.group(1), {})[match.group(2)] = value
    for module, ab in sorted(parts.items()):
        weight = state.get(f"{module}.weight")
        if set(ab) != {"A", "B"}:
            problems.append((f"{module}.lora", f": has {'/'.join(sorted(ab))} but not both A and B"))
        elif weight is None:
            problems.append((f"{module}.weight", ": the adapter updates it, but the base has no such weight"))
        elif ab["A"].ndim != 2 or ab["B"].ndim != 2 or ab["A"].shape[0] != ab["B"].shape[1] \
                or (ab["B"].shape[0], ab["A"].shape[1]) != tuple(weight.shape):
            problems.append((f"{module}.lora", f": B {tuple(ab['B'].shape)} @ A {tuple(ab['A'].shape)} does not "
                                               f"fit the base weight {tuple(weight.shape)}"))
        elif module == "lm_head" and tie_word_embeddings:
            problems.append(("lm_head.lora", ": the base ties lm_head to the token embedding, so an update to "
                                             "it alone cannot be merged"))
    if problems:
        raise CheckpointError(f"the LoRA adapter {adapter.source} does not fit this base model (it was trained "
                              "on another one):\n  " + "\n  ".join(fold_layers(problems)))
    merged = dict(state)
    for module, ab in parts.items():
        key = f"{module}.weight"
        merged[key] = state[key].float() + adapter.scaling * (ab["B"].float() @ ab["A"].float())
    return merged


def weights_fingerprint(state: dict[str, torch.Tensor]) -> str:
    """A hash of every tensor's name, dtype, shape and bytes: the same weights read from the same file
    give the same fingerprint, any changed weight another."""
    digest = hashlib.blake2b(digest_size=16)
    for key in sorted(state):
        tensor = state[key].detach().to("cpu").contiguous()
        digest.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}".encode())
        digest.update(memoryview(tensor.reshape(-1).view(torch.uint8).numpy()))
    return digest.hexdigest()
