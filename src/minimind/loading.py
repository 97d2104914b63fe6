"""One loader for every kind of trained MiniMind: `load_checkpoint(path)` -> model, config, where it came from.

Three kinds, told apart by the path:

* a Lightning checkpoint (`*.ckpt`, or a training run dir: its `checkpoints/last.ckpt`):
  the model config is in the checkpoint's hyperparameters;
* upstream MiniMind weights (`*.pth`, or a folder holding one; MiniMind2 or minimind-3 layout,
  fp16 or fp32): a bare state dict, so the config comes from the caller (`model=PRESET
  model.<field>=...`), else from a `minimind_config.json` beside the file (what
  `minimind.export format=minimind` writes) or an upstream `config.json` (model_type minimind),
  else from the training run's `config.yaml`, else the `small` preset (MiniMind2-small);
* a Hugging Face directory (`config.json` + `model.safetensors`): Llama or Qwen3 as
  `minimind.export format=hf` writes them, or upstream's own `model_type: minimind`.

Safety: `.ckpt`/`.pth`/`.bin` files are read with `torch.load(weights_only=True)`, which
refuses anything but tensors and plain containers (a tampered pickle cannot run code), and
Hugging Face weights with safetensors. Weights are loaded strictly: a checkpoint that does
not fit the config fails with the missing, unexpected and mis-shaped keys and what to change.
"""

from __future__ import annotations

import functools
import json
import pickle
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from minimind.model import MiniMindConfig, MiniMindForCausalLM
from minimind.model.presets import preset_fields, preset_names

HF_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
MINIMIND_CONFIG = "minimind_config.json"  # a .pth's shape, written beside it by `minimind.export format=minimind`
LAYER_KEY = re.compile(r"^model\.layers\.(\d+)\.(.+)$")


class ToolError(RuntimeError):
    """An expected failure of a tool (generate, evaluate, export, inspect); the message says what to change."""


class CheckpointError(ToolError):
    """A checkpoint that cannot be loaded as asked; the message says why and what to change."""


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


# --- reading files --------------------------------------------------------------------------------

def safe_torch_load(path: str | Path) -> Any:
    """`torch.load` that only accepts tensors and plain containers; anything else is refused."""
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        detail = next((line for line in lines if "GLOBAL" in line or "global" in line), lines[-1] if lines else "")
        raise CheckpointError(
            f"refusing to load {path}: it holds Python objects other than tensors and plain containers, "
            "and unpickling them could run arbitrary code. MiniMind checkpoints (.ckpt, .pth) never need "
            f"that; only a tampered or foreign file does, so it is not loaded. (torch: {detail})") from None
    except (RuntimeError, EOFError, OSError) as error:
        raise CheckpointError(f"cannot read {path} as a torch checkpoint: {error}") from None


def checkpoint_kind(path: str | Path) -> tuple[str, Path]:
    """(kind, the file or directory to read) for `ckpt=PATH`."""
    path = Path(path).expanduser()
    if not path.exists():
        raise CheckpointError(f"ckpt={str(path)!r} does not exist")
    if path.is_dir():
        if (path / "config.json").is_file() and any((path / n).is_file() for n in HF_WEIGHTS):
            return "hf", path
        last = path / "checkpoints" / "last.ckpt"
        if last.is_file():  # a training run dir
            return "lightning", last
        weights = sorted(path.glob("*.pth"))
        if len(weights) == 1:  # what `minimind.export format=minimind` writes, or a run dir's final .pth
            return "pth", weights[0]
        raise CheckpointError(
            f"ckpt={str(path)!r} is a directory but neither a Hugging Face model (config.json + "
            f"{' or '.join(HF_WEIGHTS)}) nor a training run (checkpoints/last.ckpt) nor a folder with one .pth")
    if path.suffix == ".ckpt":
        return "lightning", path
    if path.suffix in (".pth", ".pt", ".bin"):
        return "pth", path
    if path.suffix == ".safetensors":
        return "hf", path.parent
    raise CheckpointError(f"ckpt={str(path)!r}: expected a .ckpt, a .pth, a Hugging Face directory or a run dir")


def find_run_dir(path: Path) -> Path | None:
    """The training run a checkpoint lives in: the nearest parent (up to two up) with a run `config.yaml`."""
    for folder in (path.parent, path.parent.parent) if path.is_file() else (path, path.parent):
        candidate = folder / "config.yaml"
        if candidate.is_file():
            try:
                data = OmegaConf.to_container(OmegaConf.load(candidate), resolve=False)
            except Exception:  # not a YAML we understand: not a run dir
                continue
            if isinstance(data, dict) and isinstance(data.get("model"), dict):
                return folder
    return None


def run_config(run_dir: Path | None) -> dict[str, Any] | None:
    if run_dir is None:
        return None
    return OmegaConf.to_container(OmegaConf.load(run_dir / "config.yaml"), resolve=False)


# --- configs --------------------------------------------------------------------------------------

def as_config(model_config: MiniMindConfig | dict[str, Any] | Any) -> MiniMindConfig:
    if isinstance(model_config, MiniMindConfig):
        return model_config
    if OmegaConf.is_config(model_config):
        model_config = OmegaConf.to_container(model_config, resolve=True)
    return MiniMindConfig.from_dict(dict(model_config))


def config_from_hf(data: dict[str, Any], where: Path) -> MiniMindConfig:
    """MiniMindConfig from a Hugging Face `config.json` (llama, qwen3, or upstream minimind)."""
    model_type = data.get("model_type")
    if model_type == "minimind":
        return MiniMindConfig.from_dict({k: v for k, v in data.items() if k not in ("architectures", "model_type")})
    if model_type not in ("llama", "qwen3"):
        raise CheckpointError(f"{where}: model_type={model_type!r} is not a MiniMind layout "
                              "(supported: llama, qwen3, minimind)")
    for flag in ("attention_bias", "mlp_bias", "use_sliding_window"):
        if data.get(flag):
            raise CheckpointError(f"{where}: {flag}=true has no MiniMind equivalent")
    rope = data.get("rope_parameters") or data.get("rope_scaling") or {}
    rope_type = rope.get("rope_type", rope.get("type", "default"))
    theta = data.get("rope_theta", rope.get("rope_theta", 10000.0))
    scaling = None
    if rope_type == "yarn":
        scaling = {"type": "yarn", **{k: rope[k] for k in ("factor", "original_max_position_embeddings", "beta_fast",
                                                            "beta_slow", "attention_factor") if k in rope}}
    elif rope_type != "default":
        raise CheckpointError(f"{where}: rope_type={rope_type!r} is not supported (default or yarn)")
    fields = {k: data[k] for k in ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                                   "head_dim", "intermediate_size", "vocab_size", "max_position_embeddings",
                                   "rms_norm_eps", "hidden_act", "tie_word_embeddings", "bos_token_id",
                                   "eos_token_id", "pad_token_id") if data.get(k) is not None}
    return MiniMindConfig(**fields, rope_theta=theta, rope_scaling=scaling, qk_norm=model_type == "qwen3")


# --- strict loading with a useful error -----------------------------------------------------------

def infer_fields(state: dict[str, torch.Tensor], heads: int) -> dict[str, Any]:
    """The config fields a state dict's shapes reveal (heads cannot be seen without q/k norms)."""
    fields: dict[str, Any] = {}
    embed = state.get("model.embed_tokens.weight")
    if embed is not None:
        fields["vocab_size"], fields["hidden_size"] = embed.shape
    layers = {int(k.split(".")[2]) for k in state if k.startswith("model.layers.")}
    if layers:
        fields["num_hidden_layers"] = max(layers) + 1
    q, k = state.get("model.layers.0.self_attn.q_proj.weight"), state.get("model.layers.0.self_attn.k_proj.weight")
    q_norm = state.get("model.layers.0.self_attn.q_norm.weight")
    fields["qk_norm"] = q_norm is not None
    if q is not None and k is not None:
        head_dim = q_norm.shape[0] if q_norm is not None else q.shape[0] // heads
        if head_dim and q.shape[0] % head_dim == 0 and k.shape[0] % head_dim == 0:
            fields["num_attention_heads"] = q.shape[0] // head_dim
            fields["num_key_value_heads"] = k.shape[0] // head_dim
            if embed is not None and head_dim != embed.shape[1] // fields["num_attention_heads"]:
                fields["head_dim"] = head_dim
    experts = {int(k.split(".")[5]) for k in state if k.startswith("model.layers.0.mlp.experts.")}
    fields["use_moe"] = bool(experts)
    if experts:
        fields["num_experts"] = max(experts) + 1
        fields["n_shared_experts"] = len({k.split(".")[5] for k in state
                                          if k.startswith("model.layers.0.mlp.shared_experts.")})
        up = state.get("model.layers.0.mlp.experts.0.up_proj.weight")
        if up is not None:
            fields["moe_intermediate_size"] = up.shape[0]
    else:
        up = state.get("model.layers.0.mlp.up_proj.weight")
        if up is not None:
            fields["intermediate_size"] = up.shape[0]
    lm_head = state.get("lm_head.weight")
    if lm_head is not None and embed is not None and lm_head.shape == embed.shape:
        fields["tie_word_embeddings"] = bool(torch.equal(lm_head, embed))
    return fields


def expected_shapes(config: MiniMindConfig) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):  # shapes only, no memory
        return {k: tuple(v.shape) for k, v in MiniMindForCausalLM(config).state_dict().items()}


def matching_presets(state: dict[str, torch.Tensor]) -> list[str]:
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    found = []
    for name in preset_names():
        try:
            if expected_shapes(MiniMindConfig.from_dict(preset_fields(name))) == shapes:
                found.append(name)
        except Exception:  # a preset that does not build is simply not a match
            continue
    return found


def _value(v: Any) -> str:
    """A value as it is written on the command line (true/false, not True/False)."""
    return str(v).lower() if isinstance(v, bool) else str(v)


def fold_layers(rows: list[tuple[str, str]]) -> list[str]:
    """[("model.layers.0.x", d), ("model.layers.1.x", d)] -> ["model.layers.0-1.x" + d]: all keys, compactly."""
    groups: dict[tuple[str, str], list[int]] = {}
    lines: list[str] = []
    for key, detail in rows:
        match = LAYER_KEY.match(key)
        if match:
            groups.setdefault((match.group(2), detail), []).append(int(match.group(1)))
        else:
            lines.append(key + detail)
    for (suffix, detail), layers in sorted(groups.items(), key=lambda item: (min(item[1]), item[0])):
        spans: list[list[int]] = []
        for layer in sorted(layers):
            if spans and layer == spans[-1][-1] + 1:
                spans[-1].append(layer)
            else:
                spans.append([layer])
        spans = [str(s[0]) if len(s) == 1 else f"{s[0]}-{s[-1]}" for s in spans]
        lines.append(f"model.layers.{','.join(spans)}.{suffix}{detail}")
    return lines


def mismatch_report(state: dict[str, torch.Tensor], config: MiniMindConfig, source: str) -> str | None:
    """None if `state` fits `config` exactly, else a message listing every mismatched key and the fix."""
    expected = expected_shapes(config)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = sorted((k, tuple(state[k].shape), expected[k]) for k in set(state) & set(expected)
                    if tuple(state[k].shape) != expected[k])
    untied = (config.tie_word_embeddings and "lm_head.weight" in state and "model.embed_tokens.weight" in state
              and not shapes and not torch.equal(state["lm_head.weight"], state["model.embed_tokens.weight"]))
    if not (missing or unexpected or shapes or untied):
        return None

    def listing(title: str, rows: list[tuple[str, str]]) -> list[str]:
        """Every (key, detail) row, keys that differ only by layer folded into one line (`layers.0-3`)."""
        if not rows:
            return []
        return [f"  {title} ({len(rows)}):", *(f"    {line}" for line in fold_layers(rows))]

    shape = ", ".join(f"{k}={_value(getattr(config, k))}" for k in ("hidden_size", "num_hidden_layers",
                      "num_attention_heads", "num_key_value_heads", "vocab_size", "qk_norm", "use_moe"))
    lines = [f"{source} does not fit the chosen model config ({shape}):"]
    lines += listing("missing in the checkpoint", [(k, "") for k in missing])
    lines += listing("unexpected in the checkpoint", [(k, "") for k in unexpected])
    lines += listing("shape mismatches", [(k, f": checkpoint {tuple(a)} vs model {tuple(b)}") for k, a, b in shapes])
    if untied:
        lines.append("  lm_head.weight differs from model.embed_tokens.weight, but the config ties them")
    presets = matching_presets(state)
    heads = preset_fields(presets[0])["num_attention_heads"] if presets else config.num_attention_heads
    seen = infer_fields(state, heads)
    ours = config.to_dict()
    changes = {k: v for k, v in seen.items() if ours.get(k) != v}
    fixes = [f"model={p}" for p in presets]
    if changes:
        fixes.append(" ".join(f"model.{k}={_value(v)}" for k, v in changes.items()))
    said = ", ".join(f"{k}={_value(v)}" for k, v in seen.items())
    lines.append(f"The checkpoint's shapes say: {said}.")
    if not seen.get("qk_norm") and "num_attention_heads" in seen:
        lines.append(f"(Without q/k norms the head count cannot be read from the shapes: the head counts above assume "
                     f"num_attention_heads={heads}; other splits of the same widths fit too.)")
    lines.append("To load it, choose " + (" or ".join(fixes) if fixes else "the model=PRESET it was trained with")
                 + " (upstream MiniMind2: model=small / base / moe; minimind-3: model=minimind3 / minimind3_moe).")
    return "\n".join(lines)


def load_state_strict(model: MiniMindForCausalLM, state: dict[str, torch.Tensor], source: str) -> None:
    """Load every tensor or fail with the full list of what does not fit; never a partial load."""
    state = dict(state)
    config = model.config
    if config.tie_word_embeddings and "lm_head.weight" not in state and "model.embed_tokens.weight" in state:
        state["lm_head.weight"] = state["model.embed_tokens.weight"]  # Hugging Face omits the tied copy
    report = mismatch_report(state, config, source)
    if report:
        raise CheckpointError(report)
    model.load_state_dict(state, strict=True)
    if config.tie_word_embeddings:  # load_state_dict copies in place, so the tie survives; make sure
        assert model.lm_head.weight is model.model.embed_tokens.weight


# --- the loader -----------------------------------------------------------------------------------

def lightning_state(ckpt: dict[str, Any], path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(model config dict, model state dict) of a MiniMindModule checkpoint."""
    hparams = ckpt.get("hyper_parameters") or {}
    if "model_config" not in hparams or "state_dict" not in ckpt:
        raise CheckpointError(f"{path} is not a MiniMind Lightning checkpoint (no hyper_parameters.model_config "
                              "or state_dict); for upstream weights use a .pth file")
    state = {}
    for key, value in ckpt["state_dict"].items():
        if key.startswith("model."):
            state[key[len("model."):].replace("_orig_mod.", "")] = value
    return dict(hparams["model_config"]), state


def hf_state(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    if (folder / "model.safetensors").is_file():
        return load_file(folder / "model.safetensors")
    if (folder / "model.safetensors.index.json").is_file():
        index = json.loads((folder / "model.safetensors.index.json").read_text())
        state: dict[str, torch.Tensor] = {}
        for shard in sorted(set(index["weight_map"].values())):
            state.update(load_file(folder / shard))
        return state
    return safe_torch_load(folder / "pytorch_model.bin")


def pth_config(path: Path, run_dir: Path | None) -> tuple[dict[str, Any], str]:
    """The config of a bare .pth when the caller gave none: beside it, its run's, or the default."""
    for beside in (path.parent / MINIMIND_CONFIG, path.parent / "config.json"):
        if beside.is_file():
            data = json.loads(beside.read_text())
            if data.get("model_type") == "minimind":  # ours, or upstream's transformers-format config
                return {k: v for k, v in data.items() if k not in ("architectures", "model_type")}, str(beside)
    config = run_config(run_dir)
    if config is not None:
        return dict(config["model"]), str(run_dir / "config.yaml")
    return preset_fields("small"), "the default preset model=small (pass model=PRESET to choose)"


def load_checkpoint(path: str | Path, model_config: MiniMindConfig | dict[str, Any] | None = None,
                    dtype: torch.dtype | None = None, device: str | torch.device = "cpu",
                    attn_implementation: str | None = None) -> LoadedCheckpoint:
    """Load `path` (Lightning .ckpt, upstream .pth, Hugging Face dir or run dir) into a MiniMindForCausalLM.

    model_config: the config for a bare .pth (ignored for the other kinds, which carry their own).
    dtype: cast the weights after loading (None: float32). The model is returned in eval mode.
    """
    kind, path = checkpoint_kind(path)
    run_dir = find_run_dir(path)
    if kind == "lightning":
        config_dict, state = lightning_state(safe_torch_load(path), path)
        source = f"{path.name} (its hyperparameters)"
    elif kind == "pth":
        state = safe_torch_load(path)
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise CheckpointError(f"{path} is not a state dict of tensors (an upstream MiniMind .pth is "
                                  "{name: tensor}); a Lightning checkpoint must end in .ckpt")
        if model_config is not None:
            config_dict, source = as_config(model_config).to_dict(), "model=... on the command line"
        else:
            config_dict, source = pth_config(path, run_dir)
    else:
        config_json = path / "config.json"
        config = config_from_hf(json.loads(config_json.read_text()), config_json)
        config_dict, state, source = config.to_dict(), hf_state(path), str(config_json)
    if attn_implementation is not None:
        config_dict["attn_implementation"] = attn_implementation
    config = as_config(config_dict)
    model = MiniMindForCausalLM(config)
    load_state_strict(model, state, f"checkpoint {path}")
    model = model.to(device=device, dtype=dtype or torch.float32).eval()
    return LoadedCheckpoint(model=model, kind=kind, path=path, config_source=source, run_dir=run_dir)


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


def resolve_tokenizer(loaded: LoadedCheckpoint, tokenizer: str | Path | None = None):
    """The tokenizer for a checkpoint: `tokenizer=DIR`, else the one saved with it (beside the file,
    in the Hugging Face dir, or the run's `data.tokenizer`), else the project's default tokenizer."""
    from minimind.data import resolve_tokenizer as data_tokenizer

    tok = data_tokenizer(tokenizer_dir(loaded, tokenizer), run_cache_dir(loaded))
    if len(tok) > loaded.config.vocab_size:
        raise CheckpointError(f"the tokenizer has {len(tok)} tokens but the model only {loaded.config.vocab_size} "
                              "(vocab_size): pass tokenizer=DIR, the tokenizer the checkpoint was trained with")
    return tok


def tokenizer_dir(loaded: LoadedCheckpoint, tokenizer: str | Path | None = None) -> str:
    """`resolve_tokenizer`'s choice as a `data.tokenizer` value (a directory, or "default")."""
    if tokenizer not in (None, "", "auto"):
        return str(tokenizer)
    folder = next((p for p in tokenizer_candidates(loaded) if (p / "tokenizer.json").is_file()), None)
    return str(folder) if folder is not None else "default"


# --- shared by the command-line tools -------------------------------------------------------------

def command_line_model_config(cfg: Any) -> Any | None:
    """`cfg.model` if the user chose it (`model=PRESET` or `model.<field>=...`), else None.

    The tools' configs always hold a `model` (the default preset), but only a choice made on
    the command line should override what a checkpoint's own files say about its shape.
    """
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return cfg.get("model")
    overrides = [o.lstrip("+~") for o in HydraConfig.get().overrides.task]
    chosen = any(o == "model" or o.startswith(("model=", "model.")) for o in overrides)
    return cfg.model if chosen else None


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    return torch.device(name)


def pick_dtype(name: str = "auto", device: torch.device | str = "cpu") -> torch.dtype:
    """`auto`: bfloat16 on a GPU that has it, else float32; or float32 | bfloat16 | float16."""
    device = torch.device(device)
    if name == "auto":
        cuda_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if cuda_bf16 else torch.float32
    dtypes = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
              "float16": torch.float16, "fp16": torch.float16}
    if name not in dtypes:
        raise CheckpointError(f"dtype={name!r} is unknown: use auto, float32, bfloat16 or float16")
    return dtypes[name]


def describe(loaded: LoadedCheckpoint) -> str:
    """One line for the terminal: what was loaded, from where, how big."""
    cfg = loaded.config
    params = loaded.model.num_parameters()
    p = next(loaded.model.parameters())
    return (f"loaded {loaded.kind} checkpoint {loaded.path} ({params / 1e6:.2f}M parameters, "
            f"{cfg.num_hidden_layers} layers x {cfg.hidden_size}, config from {loaded.config_source}) "
            f"on {p.device} as {str(p.dtype).removeprefix('torch.')}")


def cli_errors(main: Callable) -> Callable:
    """Let a tool's expected errors (bad checkpoint, bad config, bad data) end the command with
    their message and exit status 1, instead of a traceback."""
    from minimind.data.errors import DataError
    from minimind.model import ConfigError

    expected = (ToolError, ConfigError, DataError, FileNotFoundError)

    @functools.wraps(main)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return main(*args, **kwargs)
        except expected as error:
            raise SystemExit(f"error: {error}") from None

    return wrapper
