"""`show=parameters`: where the parameters are, counted from the model's tensors, and what GQA saves."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from minimind.inspect.figures import Section, human_bytes, new_figure, save, source
from minimind.model import MiniMindConfig, MiniMindForCausalLM
from minimind.model.params import kv_cache_bytes_per_token

BYTES_PER_ELEMENT = {"fp16/bf16": 2, "fp32": 4}


def component(name: str) -> str:
    """The component a parameter name belongs to (upstream / Hugging Face names)."""
    if name == "model.embed_tokens.weight":
        return "embedding"
    if name == "lm_head.weight":
        return "lm_head"
    for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
        if f"self_attn.{proj}" in name:
            return f"attention {proj}"
    if "q_norm" in name or "k_norm" in name:
        return "q/k norms"
    if "norm" in name:
        return "norms"
    if ".mlp.shared_experts." in name:
        return "shared experts"
    if ".mlp.experts." in name:
        return "experts"
    if ".mlp.gate.weight" in name:
        return "router"
    if ".mlp." in name:
        return "mlp (SwiGLU)"
    return "other"


def tensor_breakdown(model: MiniMindForCausalLM) -> dict[str, int]:
    """Parameter counts by component, from the model's actual tensors; a tied lm_head counts 0
    (it is the embedding matrix). Sums to `model.num_parameters()`."""
    counts: dict[str, int] = {}
    for name, p in model.named_parameters():  # shared (tied) tensors are listed once
        counts[component(name)] = counts.get(component(name), 0) + p.numel()
    counts.setdefault("lm_head", 0)
    order = ["embedding", "attention q_proj", "attention k_proj", "attention v_proj", "attention o_proj",
             "q/k norms", "mlp (SwiGLU)", "experts", "shared experts", "router", "norms", "lm_head", "other"]
    return {k: counts[k] for k in order if k in counts}


def gqa_comparison(config: MiniMindConfig) -> dict[str, Any]:
    """This model against multi-head attention of the same size (num_key_value_heads = num_attention_heads)."""
    layers, hidden, head_dim = config.num_hidden_layers, config.hidden_size, config.head_dim
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
    kv_params = 2 * layers * hidden * kv_heads * head_dim  # k_proj and v_proj of every layer
    mha_kv_params = 2 * layers * hidden * heads * head_dim
    mha = dataclasses.replace(config, num_key_value_heads=heads)
    cache = {label: {"gqa": kv_cache_bytes_per_token(config, n), "mha": kv_cache_bytes_per_token(mha, n)}
             for label, n in BYTES_PER_ELEMENT.items()}
    return {
        "num_attention_heads": heads, "num_key_value_heads": kv_heads, "queries_per_kv_head": heads // kv_heads,
        "kind": "MHA" if kv_heads == heads else "MQA" if kv_heads == 1 else "GQA",
        "kv_proj_params": kv_params, "mha_kv_proj_params": mha_kv_params,
        "kv_proj_params_saved": mha_kv_params - kv_params,
        "kv_cache_bytes_per_token": cache,
        "kv_cache_saving_fraction": 1 - kv_heads / heads,
        "context_tokens": config.max_position_embeddings,
    }


def draw(breakdown: dict[str, int], tied: bool):
    names = list(breakdown)
    values = [breakdown[n] for n in names]
    total = sum(values)
    fig = new_figure(8, 0.45 * len(names) + 1.4)
    ax = fig.subplots()
    bars = ax.barh(names, values, color="tab:blue")
    ax.invert_yaxis()
    for bar, name, value in zip(bars, names, values, strict=True):
        note = " (tied: the embedding matrix)" if name == "lm_head" and tied else ""
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2,
                f" {value:,} ({100 * value / total:.1f}%){note}", va="center", fontsize=8)
    ax.set_xlabel("parameters")
    ax.set_xlim(0, max(values) * 1.45 if max(values) else 1)
    ax.set_title(f"parameters by component ({total:,} in all)")
    return fig


def section(model, out: Path, **_: Any) -> Section:
    cfg = model.config
    breakdown, gqa, total = tensor_breakdown(model), gqa_comparison(cfg), model.num_parameters()
    path = save(draw(breakdown, cfg.tie_word_embeddings), out / "parameters.png")
    lines = ["## Parameters by component", "",
             f"Counted from the model's tensors: the embedding ({cfg.vocab_size:,} x {cfg.hidden_size}) alone is "
             f"{100 * breakdown['embedding'] / total:.0f}% of this model, a large share at MiniMind's sizes; a tied "
             "lm_head reuses that matrix at no cost. The MLPs hold most of the rest.", "",
             "Formula: `per layer: attention = hidden x head_dim x (2 x heads + 2 x kv_heads), SwiGLU = 3 x hidden x "
             "intermediate, norms = 2 x hidden`; plus `embedding = vocab x hidden` and the final norm.", "",
             "| component | parameters | share |", "|---|---:|---:|"]
    for name, count in breakdown.items():
        note = " (tied to the embedding)" if name == "lm_head" and cfg.tie_word_embeddings else ""
        lines.append(f"| {name}{note} | {count:,} | {100 * count / total:.1f}% |")
    lines += [f"| **total** | **{total:,}** | 100% |", "", "![parameters by component](parameters.png)", ""]

    cache = gqa["kv_cache_bytes_per_token"]
    heads, kv, n_ctx = gqa["num_attention_heads"], gqa["num_key_value_heads"], gqa["context_tokens"]
    saved = gqa["kv_proj_params_saved"]
    lines += [f"### {gqa['kind']} against multi-head attention", "",
              f"Each of the {kv} key/value heads serves {gqa['queries_per_kv_head']} query heads. Multi-head "
              f"attention of the same size would have num_key_value_heads = {heads}:", "",
              f"| | this model ({gqa['kind']}, {kv} kv heads) | MHA ({heads} kv heads) | saved |",
              "|---|---:|---:|---:|",
              f"| k/v projection parameters | {gqa['kv_proj_params']:,} | {gqa['mha_kv_proj_params']:,} | "
              f"{saved:,} ({100 * saved / (total + saved):.1f}% of the MHA model) |"]
    for label in BYTES_PER_ELEMENT:
        ours, mha = cache[label]["gqa"], cache[label]["mha"]
        lines.append(f"| KV cache per token, {label} | {ours:,} B | {mha:,} B | "
                     f"{mha - ours:,} B ({100 * gqa['kv_cache_saving_fraction']:.0f}%) |")
    ours, mha = cache["fp16/bf16"]["gqa"] * n_ctx, cache["fp16/bf16"]["mha"] * n_ctx
    lines.append(f"| KV cache at the full context ({n_ctx:,} tokens), fp16/bf16 | {human_bytes(ours)} | "
                 f"{human_bytes(mha)} | {human_bytes(mha - ours)} |")
    lines += ["", "KV cache per token = 2 (keys and values) x layers x kv_heads x head_dim x bytes per element = "
              f"2 x {cfg.num_hidden_layers} x {kv} x {cfg.head_dim} x 2 = {cache['fp16/bf16']['gqa']:,} bytes "
              f"in fp16/bf16 ({cache['fp32']['gqa']:,} in fp32), per sequence in the batch.", "",
              "Code: " + source(tensor_breakdown, gqa_comparison, kv_cache_bytes_per_token) + ".", ""]
    return Section("parameters", {"breakdown": breakdown, "gqa": gqa}, [path], lines)
