"""The Hugging Face mapping, both ways: MiniMind <-> transformers' Llama / Qwen3.

MiniMind2's layout is a `LlamaForCausalLM` and minimind-3's (q/k norms) a `Qwen3ForCausalLM`,
with the same parameter names, so weights cross unchanged; only the config fields are
translated. Upstream's own transformers-format `config.json` (`model_type: minimind`) is
read as is. What has no faithful equivalent (MoE layouts, biases, sliding windows, other
RoPE types) is refused rather than mapped wrong.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from minimind.errors import CheckpointError, ToolError
from minimind.model import MiniMindConfig, MiniMindForCausalLM


class ExportError(ToolError):
    """An export that cannot be done faithfully; the message says why and what to do instead."""


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


def hf_config(config: MiniMindConfig, dtype: torch.dtype) -> dict[str, Any]:
    """config.json for transformers' Llama (MiniMind2 layout) or Qwen3 (q/k norm layout)."""
    from transformers import LlamaConfig, Qwen3Config

    if config.use_moe:
        raise ExportError(
            "format=hf: this is a mixture-of-experts model, which has no dense LlamaForCausalLM / Qwen3ForCausalLM "
            "equivalent (transformers' MoE classes lay experts out differently and MiniMind2-MoE's shared expert "
            "has no Qwen3-MoE counterpart), so it is not exported rather than exported wrong. "
            "Use format=minimind for an upstream .pth instead.")
    rope: dict[str, Any] = {"rope_type": "default", "rope_theta": config.rope_theta}
    if config.rope_scaling is not None:
        s = config.rope_scaling
        rope = {"rope_type": "yarn", "rope_theta": config.rope_theta, "factor": float(s.get("factor", 16)),
                "original_max_position_embeddings": s.get("original_max_position_embeddings", 2048),
                "beta_fast": float(s.get("beta_fast", 32.0)), "beta_slow": float(s.get("beta_slow", 1.0)),
                "attention_factor": float(s.get("attention_factor", 1.0))}
    common = dict(vocab_size=config.vocab_size, hidden_size=config.hidden_size,
                  intermediate_size=config.intermediate_size, num_hidden_layers=config.num_hidden_layers,
                  num_attention_heads=config.num_attention_heads, num_key_value_heads=config.num_key_value_heads,
                  head_dim=config.head_dim, max_position_embeddings=config.max_position_embeddings,
                  rms_norm_eps=config.rms_norm_eps, hidden_act=config.hidden_act,
                  tie_word_embeddings=config.tie_word_embeddings, attention_bias=False, attention_dropout=0.0,
                  bos_token_id=config.bos_token_id, eos_token_id=config.eos_token_id,
                  pad_token_id=config.pad_token_id, initializer_range=config.initializer_range,
                  rope_parameters=rope)
    if config.qk_norm:
        hf = Qwen3Config(**common, use_sliding_window=False)
        architecture = "Qwen3ForCausalLM"
    else:
        hf = LlamaConfig(**common, mlp_bias=False)
        architecture = "LlamaForCausalLM"
    # The non-default fields transformers itself would save, plus every field a reader looks for
    # (and the two top-level keys transformers 4.x reads: rope_theta, torch_dtype).
    name = str(dtype).removeprefix("torch.")
    data = {"architectures": [architecture], "model_type": hf.model_type, **hf.to_diff_dict(), **common,
            "rope_theta": config.rope_theta, "torch_dtype": name, "dtype": name}
    data.pop("transformers_version", None)
    data["transformers_version"] = hf.to_dict().get("transformers_version")
    if config.rope_scaling is not None:
        data["rope_scaling"] = dict(rope)
    return data


def hf_state_dict(model: MiniMindForCausalLM, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Our state dict is already transformers' (same names); a tied lm_head is left out, as transformers does."""
    state = {k: v.detach().to("cpu", dtype).contiguous().clone() for k, v in model.state_dict().items()}
    if model.config.tie_word_embeddings:
        state.pop("lm_head.weight")
    return state


def minimind_config_json(config: MiniMindConfig) -> dict[str, Any]:
    """Upstream's transformers-format config (`model_type: minimind`); `config_from_hf` reads it back."""
    return {"model_type": "minimind", "architectures": ["MiniMindForCausalLM"], **config.to_dict()}
