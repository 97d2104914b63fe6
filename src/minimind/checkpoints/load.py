"""One loader for every kind of trained MiniMind: `load_checkpoint(path)` -> model, config, where it came from.

The config of a Lightning checkpoint is in its hyperparameters and a Hugging Face directory
has its `config.json`. A bare upstream `.pth` has none, so it comes from the caller
(`model=PRESET model.<field>=...` on the command line), else from a `minimind_config.json`
beside the file (what `minimind.export format=minimind` writes) or an upstream `config.json`
(model_type minimind), else from the training run's `config.yaml`, else the `small` preset
(MiniMind2-small). Weights are loaded strictly (`minimind.checkpoints.mismatch`).

The tokenizer of a checkpoint is the one saved with it (beside the file, in the Hugging
Face dir, or its run's `data.tokenizer`), else the project's default tokenizer.

LoRA: a LoRA run's checkpoint (or run dir) loads as its base with the adapters merged, and
`lora=ADAPTER` merges an adapter file (upstream's `lora_medical_512.pth`) into any checkpoint
(`minimind.checkpoints.lora`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from minimind.checkpoints.files import (MINIMIND_CONFIG, checkpoint_kind, hf_state, lightning_state, pth_state,
                                        safe_torch_load)
from minimind.checkpoints.hf import config_from_hf
from minimind.checkpoints.lora import LORA_HPARAMS, Adapter, merge_lora, read_adapter, weights_fingerprint
from minimind.checkpoints.mismatch import load_state_strict
from minimind.errors import CheckpointError
from minimind.model import MiniMindConfig, MiniMindForCausalLM
from minimind.model.lora import LoRAConfig
from minimind.model.presets import preset_fields
from minimind.runs import find_run_dir, run_config


@dataclass
class LoadedCheckpoint:
    model: MiniMindForCausalLM
    kind: str  # "lightning" | "pth" | "hf"
    path: Path  # the file or directory actually read
    config_source: str  # where the model config came from, for messages
    run_dir: Path | None = None  # the training run the checkpoint belongs to, if any

    @property
    def config(self) -> MiniMindConfig:
        return self.model.config


def as_config(model_config: MiniMindConfig | dict[str, Any] | Any) -> MiniMindConfig:
    if isinstance(model_config, MiniMindConfig):
        return model_config
    if OmegaConf.is_config(model_config):
        model_config = OmegaConf.to_container(model_config, resolve=True)
    return MiniMindConfig.from_dict(dict(model_config))


def pth_config(path: Path, run_dir: Path | None) -> tuple[dict[str, Any], str]:
    """The config of a bare .pth when the caller gave none: beside it, its run's, or the default."""
    for beside in (path.parent / MINIMIND_CONFIG, path.parent / "config.json"):
        if beside.is_file():
            data = _read_json(beside)
            if data.get("model_type") == "minimind":  # ours, or upstream's transformers-format config
                return config_from_hf(data, beside).to_dict(), str(beside)
    config = run_config(run_dir)
    if config is not None:
        return dict(config["model"]), str(run_dir / "config.yaml")
    return preset_fields("small"), "the default preset model=small (pass model=PRESET to choose)"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{path} is not readable JSON ({error})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} is not a JSON object")
    return data


def read_weights(path: str | Path, model_config: MiniMindConfig | dict[str, Any] | None = None,
                 what: str = "ckpt", lora: str | Path | None = None
                 ) -> tuple[str, Path, dict[str, Any], dict[str, torch.Tensor], str]:
    """(kind, path read, model config dict, state dict, where the config came from) of any checkpoint.

    A LoRA run's checkpoint gives its base with the adapters merged; `lora=` an adapter file (or a
    LoRA run) merges that adapter into whatever `path` holds."""
    kind, path = checkpoint_kind(path, what)
    if kind == "lightning":
        checkpoint = safe_torch_load(path)
        config_dict, state = lightning_state(checkpoint, path)
        source = f"{path.name} (its hyperparameters)"
        recorded = checkpoint["hyper_parameters"].get(LORA_HPARAMS)
        if recorded:
            state = _lora_run_weights(path, config_dict, state, recorded)
            source += f", its LoRA adapters merged into their base {recorded['base']}"
    elif kind == "pth":
        state = pth_state(path)
        if model_config is not None:
            config_dict, source = as_config(model_config).to_dict(), "model=... on the command line"
        else:
            config_dict, source = pth_config(path, find_run_dir(path))
    else:
        config_json = path / "config.json"
        config = config_from_hf(_read_json(config_json), config_json)
        config_dict, state, source = config.to_dict(), hf_state(path), str(config_json)
    if lora not in (None, ""):
        adapter = read_adapter(lora)
        state = merge_lora(state, adapter, as_config(config_dict).tie_word_embeddings)
        source += f", with the LoRA adapter {adapter.source} merged"
    return kind, path, config_dict, state, source


def read_lora_base(recorded: dict[str, Any], config_dict: dict[str, Any], holder: str, retry: str,
                   path: str | Path | None = None) -> tuple[str, Path, dict[str, torch.Tensor], str]:
    """(kind, path read, state, config source) of the base a LoRA run's adapters were trained on, read again:
    `path` (the same weights elsewhere), else the file its checkpoint records (`recorded`, its `lora`
    hyperparameters). Refused if it is gone or its weights are not those the adapters were trained on.
    holder: what holds the adapters and retry: the way out, for messages."""
    base = Path(path if path not in (None, "") else recorded["base"]).expanduser()
    if not base.exists():
        raise CheckpointError(f"{holder} holds LoRA adapters trained on the base {base}, which does not exist (any "
                              f"more): put it back, or {retry}")
    kind, base, _, state, source = read_weights(base, config_dict, what="the LoRA run's base")
    if weights_fingerprint(state) != recorded["base_fingerprint"]:
        raise CheckpointError(f"{holder} holds LoRA adapters trained on the base {recorded['base']}, and the weights "
                              f"in {base} are not those (another file, or a run that went on training since): "
                              f"give the original, or {retry}")
    return kind, base, state, source


def _lora_run_weights(path: Path, config_dict: dict[str, Any], adapters: dict[str, torch.Tensor],
                      recorded: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The weights of a LoRA run's checkpoint: its base, read again and checked, with the adapters merged."""
    _, _, state, _ = read_lora_base(recorded, config_dict, str(path), retry="merge the adapters into a base of your "
                                    f"choice: ckpt=BASE lora={path}")
    adapter = Adapter(dict(adapters), LoRAConfig.from_dict(recorded).scaling, str(path))
    return merge_lora(state, adapter, as_config(config_dict).tie_word_embeddings)


def load_checkpoint(path: str | Path, model_config: MiniMindConfig | dict[str, Any] | None = None,
                    dtype: torch.dtype | None = None, device: str | torch.device = "cpu",
                    attn_implementation: str | None = None, lora: str | Path | None = None) -> LoadedCheckpoint:
    """Load `path` (Lightning .ckpt, upstream .pth, Hugging Face dir or run dir) into a MiniMindForCausalLM.

    model_config: the config for a bare .pth (ignored for the other kinds, which carry their own).
    dtype: cast the weights after loading (None: float32). The model is returned in eval mode.
    lora: a LoRA adapter (upstream's `lora_<name>_<hidden>.pth`, or a LoRA run) merged into the weights;
    a LoRA run's own checkpoint needs none (its base and adapters are merged as it is read).
    """
    kind, path, config_dict, state, source = read_weights(path, model_config, lora=lora)
    if attn_implementation is not None:
        config_dict["attn_implementation"] = attn_implementation
    config = as_config(config_dict)
    with torch.random.fork_rng(devices=[]):  # the random init is overwritten: leave the caller's RNG as it was
        model = MiniMindForCausalLM(config)
    load_state_strict(model, state, f"checkpoint {path}")
    model = model.to(device=device, dtype=dtype or torch.float32).eval()
    return LoadedCheckpoint(model=model, kind=kind, path=path, config_source=source, run_dir=find_run_dir(path))


# --- tokenizers -----------------------------------------------------------------------------------

def tokenizer_candidates(loaded: LoadedCheckpoint) -> list[Path]:
    """Where a checkpoint's tokenizer may be, most specific first."""
    folder = loaded.path if loaded.path.is_dir() else loaded.path.parent
    found = [folder, folder / "tokenizer"]
    if loaded.run_dir is not None:
        found += [loaded.run_dir, loaded.run_dir / "tokenizer"]
        tok = ((run_config(loaded.run_dir) or {}).get("data") or {}).get("tokenizer")
        if isinstance(tok, str) and tok not in ("", "default") and "${" not in tok:
            found.append(Path(tok).expanduser())
    return found


def run_cache_dir(loaded: LoadedCheckpoint) -> Path | None:
    """The cache root the checkpoint's run used (where its default tokenizer lives)."""
    cache = ((run_config(loaded.run_dir) or {}).get("data") or {}).get("cache_dir")
    return Path(cache).expanduser() if isinstance(cache, str) and "${" not in cache else None


def tokenizer_dir(loaded: LoadedCheckpoint, tokenizer: str | Path | None = None) -> str:
    """`resolve_tokenizer`'s choice as a `data.tokenizer` value (a directory, or "default")."""
    if tokenizer not in (None, "", "auto"):
        return str(tokenizer)
    folder = next((p for p in tokenizer_candidates(loaded) if (p / "tokenizer.json").is_file()), None)
    return str(folder) if folder is not None else "default"


def resolve_tokenizer(loaded: LoadedCheckpoint, tokenizer: str | Path | None = None):
    """The tokenizer for a checkpoint: `tokenizer=DIR`, else the one saved with it, else the default."""
    from minimind.data import resolve_tokenizer as data_tokenizer
    from minimind.data.tokenizer import check_vocab_fits

    tok = data_tokenizer(tokenizer_dir(loaded, tokenizer), run_cache_dir(loaded))
    check_vocab_fits(len(tok), loaded.config.vocab_size, fix="pass tokenizer=DIR, the tokenizer the checkpoint "
                     "was trained with")
    return tok
