"""Look inside a trained MiniMind: attention maps, where the parameters are, what GQA saves.

    python -m minimind.inspect ckpt=outputs/runs/DATE/TIME prompt="A list is a sequence" out=inspect/
    python -m minimind.inspect ckpt=pretrain_512.pth model=small prompt="The capital of France is" out=inspect/small
    python -m minimind.inspect ckpt=exported_hf_dir prompt="..." out=inspect/hf max_tokens=24

Writes into `out`:

* `attention_layer_NN.png`: one figure per layer, one panel per head, the softmax attention
  weights of the prompt (row: query token, column: the key token it reads; the model runs
  its eager attention with `output_attentions=True`). The title of each panel names the
  key/value head it shares under GQA.
* `parameters.png`: parameters by component (embedding, q/k/v/o projections, MLP or
  experts + router, norms, lm_head, tied or not).
* `summary.md` (and `summary.json`): the tables behind the pictures, the saving of GQA against
  multi-head attention of the same size, and the KV cache per token,
  2 (k and v) x layers x kv_heads x head_dim x bytes per element, in fp16/bf16 and fp32.

(This module is `minimind.inspect`; it imports everything absolutely, so the standard
library's `inspect` is never shadowed.)
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import warnings
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from minimind.checkpoints import resolve_tokenizer
from minimind.cli import describe, hydra_app, load_tool_checkpoint
from minimind.model import MiniMindConfig, MiniMindForCausalLM
from minimind.model.params import kv_cache_bytes_per_token

BYTES_PER_ELEMENT = {"fp16/bf16": 2, "fp32": 4}


# --- numbers ----------------------------------------------------------------------------------------

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


# --- pictures ---------------------------------------------------------------------------------------

def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    warnings.filterwarnings("ignore", message=r"Glyph .* missing from", category=UserWarning)
    return plt


def token_labels(tokenizer, ids: list[int]) -> list[str]:
    """One readable label per token: its text, `·` for each space, escapes for newlines."""
    labels = []
    for i in ids:
        text = tokenizer.decode([i])
        if "\ufffd" in text:  # part of a multi-byte character: show the byte-level token instead
            text = tokenizer.convert_ids_to_tokens(i)
        labels.append(text.replace(" ", "·").replace("\n", "\\n").replace("\t", "\\t") or "∅")
    return labels


def plot_attention(weights: torch.Tensor, labels: list[str], layer: int, kv_heads: int, path: Path) -> Path:
    """weights (H, T, T) of one layer -> one figure with a grid of heads."""
    plt = _pyplot()
    from matplotlib.colors import PowerNorm

    heads, t = weights.shape[0], weights.shape[-1]
    cols = min(4 if t <= 16 else 2, heads)  # long prompts: fewer, bigger panels per row
    rows = math.ceil(heads / cols)
    size = max(3.4, 0.22 * t + 1.8)  # inches per panel, room for the token labels
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols + 1.2, size * rows + 0.8), squeeze=False,
                             layout="constrained")
    font = 8  # a cell is at least 0.22 inch (16 pt) tall
    group = heads // kv_heads
    norm = PowerNorm(gamma=0.5, vmin=0.0, vmax=1.0)  # square-root colours: small weights stay visible
    image = None
    for h, ax in enumerate(axes.flat):
        if h >= heads:
            ax.axis("off")
            continue
        image = ax.imshow(weights[h].float().numpy(), cmap="viridis", norm=norm, interpolation="nearest")
        ax.set_title(f"head {h} (kv head {h // group})", fontsize=9)
        ax.set_xticks(range(t), labels, rotation=90, fontsize=font)
        ax.set_yticks(range(t), labels if h % cols == 0 else [], fontsize=font)
        ax.set_xlabel("key (attended to)", fontsize=8)
        if h % cols == 0:
            ax.set_ylabel("query", fontsize=8)
    fig.suptitle(f"layer {layer}: attention weights per head (each row sums to 1)", fontsize=11)
    fig.colorbar(image, ax=axes, shrink=0.8, label="weight (square-root scale)")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_parameters(breakdown: dict[str, int], tied: bool, path: Path) -> Path:
    plt = _pyplot()
    names = list(breakdown)
    values = [breakdown[n] for n in names]
    total = sum(values)
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(names) + 1.4))
    bars = ax.barh(names, values, color="tab:blue")
    ax.invert_yaxis()
    for bar, name, value in zip(bars, names, values, strict=True):
        note = " (tied: the embedding matrix)" if name == "lm_head" and tied else ""
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2,
                f" {value:,} ({100 * value / total:.1f}%){note}", va="center", fontsize=8)
    ax.set_xlabel("parameters")
    ax.set_xlim(0, max(values) * 1.45 if max(values) else 1)
    ax.set_title(f"parameters by component ({total:,} in all)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --- the report -------------------------------------------------------------------------------------

def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.2f} {unit}"
        n /= 1024
    return f"{n} B"


def describe_config(cfg: dict[str, Any], kind: str, total: int) -> str:
    """One sentence for the summary: the model's shape."""
    if cfg["use_moe"]:
        mlp = (f"MoE of {cfg['num_experts']} experts (top-{cfg['num_experts_per_tok']}, "
               f"{cfg['n_shared_experts']} shared) of width {cfg['moe_intermediate_size']}")
    else:
        mlp = f"SwiGLU MLP of width {cfg['intermediate_size']}"
    return (f"{cfg['num_hidden_layers']} layers of width {cfg['hidden_size']}, {cfg['num_attention_heads']} query "
            f"heads and {cfg['num_key_value_heads']} key/value heads ({kind}) of dimension {cfg['head_dim']}"
            f"{' with q/k norm' if cfg['qk_norm'] else ''}, {mlp}, vocabulary {cfg['vocab_size']}, embeddings "
            f"{'tied' if cfg['tie_word_embeddings'] else 'untied'}: **{total:,} parameters**.")


def write_summary(report: dict[str, Any], path: Path) -> Path:
    cfg, gqa, params = report["config"], report["gqa"], report["parameters"]
    total = report["total_parameters"]
    lines = [f"# Inside {report['source']}", "", describe_config(cfg, gqa["kind"], total), "",
             "## Parameters by component", "", "| component | parameters | share |", "|---|---:|---:|"]
    for name, count in params.items():
        note = " (tied to the embedding)" if name == "lm_head" and cfg["tie_word_embeddings"] else ""
        lines.append(f"| {name}{note} | {count:,} | {100 * count / total:.1f}% |")
    lines += [f"| **total** | **{total:,}** | 100% |", "", "![parameters by component](parameters.png)", ""]

    cache = gqa["kv_cache_bytes_per_token"]
    heads, kv, n_ctx = gqa["num_attention_heads"], gqa["num_key_value_heads"], gqa["context_tokens"]
    saved = gqa["kv_proj_params_saved"]
    lines += [f"## {gqa['kind']} against multi-head attention", "",
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
    lines.append(f"| KV cache at the full context ({n_ctx:,} tokens), fp16/bf16 | {_bytes(ours)} | {_bytes(mha)} | "
                 f"{_bytes(mha - ours)} |")
    lines += ["", "KV cache per token = 2 (keys and values) x layers x kv_heads x head_dim x bytes per element = "
              f"2 x {cfg['num_hidden_layers']} x {kv} x {cfg['head_dim']} x 2 = {cache['fp16/bf16']['gqa']:,} bytes "
              f"in fp16/bf16 ({cache['fp32']['gqa']:,} in fp32), per sequence in the batch.", ""]

    att = report["attention"]
    cut = f", cut to the first {len(att['tokens'])}" if att["truncated"] else ""
    lines += ["## Attention", "",
              f"Prompt: `{att['prompt']}` ({len(att['tokens'])} tokens{cut}): "
              + " ".join(f"`{t}`" for t in att["tokens"]), "",
              "Row = query token, column = the key it attends to; causal, so everything above the diagonal is 0. "
              "Heads under the same kv head share their keys and values but not their queries.", ""]
    lines += [f"![layer {i}]({Path(p).name})" for i, p in enumerate(att["figures"])]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@torch.inference_mode()
def inspect_model(model: MiniMindForCausalLM, tokenizer, prompt: str, out_dir: str | Path,
                  max_tokens: int = 32, source: str = "MiniMind") -> dict[str, Any]:
    """Write the attention figures, the parameter chart, summary.md and summary.json into `out_dir`;
    returns the report (the numbers in summary.json)."""
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    config = model.config
    ids = tokenizer.encode(prompt, add_special_tokens=False)
    if not ids:
        raise ValueError("prompt is empty: give prompt=\"...\"")
    truncated = len(ids) > max_tokens
    ids = ids[:max_tokens]
    device = next(model.parameters()).device
    result = model.eval()(torch.tensor([ids], device=device), output_attentions=True)  # eager attention
    labels = token_labels(tokenizer, ids)
    figures = [str(plot_attention(w[0].float().cpu(), labels, i, config.num_key_value_heads,
                                  out / f"attention_layer_{i:02d}.png"))
               for i, w in enumerate(result.attentions)]
    breakdown = tensor_breakdown(model)
    plot_parameters(breakdown, config.tie_word_embeddings, out / "parameters.png")
    report = {
        "source": source, "config": config.to_dict(), "parameters": breakdown,
        "total_parameters": model.num_parameters(), "gqa": gqa_comparison(config),
        "attention": {"prompt": prompt, "tokens": labels, "token_ids": ids, "truncated": truncated,
                      "figures": figures},
        "files": {"summary": str(out / "summary.md"), "parameters": str(out / "parameters.png")},
    }
    write_summary(report, out / "summary.md")
    (out / "summary.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return report


@hydra_app("inspect")
def main(cfg: DictConfig) -> None:
    loaded = load_tool_checkpoint(cfg, attn_implementation="eager")
    print(describe(loaded), file=sys.stderr, flush=True)
    tokenizer = resolve_tokenizer(loaded, cfg.tokenizer)
    report = inspect_model(loaded.model, tokenizer, cfg.prompt, cfg.out, cfg.max_tokens, source=str(loaded.path))
    gqa = report["gqa"]["kv_cache_bytes_per_token"]
    print(f"wrote {len(report['attention']['figures'])} attention figures, parameters.png and summary.md to {cfg.out}")
    print(f"{report['total_parameters']:,} parameters; KV cache {gqa['fp16/bf16']['gqa']:,} B/token in fp16 "
          f"({gqa['fp16/bf16']['mha']:,} B with MHA)")


if __name__ == "__main__":
    main()
