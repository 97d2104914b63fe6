"""`show=attention`: the softmax attention weights of every head on the prompt, one figure per layer.

The model runs its eager attention with `output_attentions=True` (`minimind.model.attention.Attention._eager`),
so the weights are the ones it really used. The title of each panel names the key/value head
it shares under GQA.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from minimind.inspect.figures import Section, new_figure, save, source
from minimind.model.attention import Attention, repeat_kv


def token_labels(tokenizer, ids: list[int]) -> list[str]:
    """One readable label per token: its text, `·` for each space, escapes for newlines."""
    labels = []
    for i in ids:
        text = tokenizer.decode([i])
        if "\ufffd" in text:  # part of a multi-byte character: show the byte-level token instead
            text = tokenizer.convert_ids_to_tokens(i)
        labels.append(text.replace(" ", "·").replace("\n", "\\n").replace("\t", "\\t") or "∅")
    return labels


@torch.inference_mode()
def attention_data(model, ids: list[int]) -> list[torch.Tensor]:
    """The attention weights of every layer on `ids`: (heads, T, T) each; row = query, column = key."""
    result = model(torch.tensor([ids], device=next(model.parameters()).device), output_attentions=True)
    return [w[0].float().cpu() for w in result.attentions]


def draw(weights: torch.Tensor, labels: list[str], layer: int, kv_heads: int):
    """weights (H, T, T) of one layer -> one figure with a grid of heads."""
    from matplotlib.colors import PowerNorm

    heads, t = weights.shape[0], weights.shape[-1]
    cols = min(4 if t <= 16 else 2, heads)  # long prompts: fewer, bigger panels per row
    rows = math.ceil(heads / cols)
    size = max(3.4, 0.22 * t + 1.8)  # inches per panel, room for the token labels
    fig = new_figure(size * cols + 1.2, size * rows + 0.8)
    axes = fig.subplots(rows, cols, squeeze=False)
    font = 8  # a cell is at least 0.22 inch (16 pt) tall
    group = heads // kv_heads
    norm = PowerNorm(gamma=0.5, vmin=0.0, vmax=1.0)  # square-root colours: small weights stay visible
    image = None
    for h, ax in enumerate(axes.flat):
        if h >= heads:
            ax.axis("off")
            continue
        image = ax.imshow(weights[h].numpy(), cmap="viridis", norm=norm, interpolation="nearest")
        ax.set_title(f"head {h} (kv head {h // group})", fontsize=9)
        ax.set_xticks(range(t), labels, rotation=90, fontsize=font)
        ax.set_yticks(range(t), labels if h % cols == 0 else [], fontsize=font)
        ax.set_xlabel("key (attended to)", fontsize=8)
        if h % cols == 0:
            ax.set_ylabel("query", fontsize=8)
    fig.suptitle(f"layer {layer}: attention weights per head (each row sums to 1)", fontsize=11)
    fig.colorbar(image, ax=axes, shrink=0.8, label="weight (square-root scale)")
    return fig


def section(model, out: Path, ids: list[int], labels: list[str], prompt: str, truncated: bool,
            **_: Any) -> Section:
    weights = attention_data(model, ids)
    kv_heads = model.config.num_key_value_heads
    files = [save(draw(w, labels, i, kv_heads), out / f"attention_layer_{i:02d}.png") for i, w in enumerate(weights)]
    # how far back each head looks, averaged over the prompt's queries: a summary of the maps in numbers
    distance = torch.arange(len(ids))[:, None] - torch.arange(len(ids))[None, :]  # query - key, (T, T)
    data = {"prompt": prompt, "tokens": labels, "token_ids": ids, "truncated": truncated,
            "figures": [str(f) for f in files],
            "mean_distance": [(w * distance).sum(-1).mean(-1).tolist() for w in weights],  # [layer][head]
            "first_token_share": [w[:, :, 0].mean(-1).tolist() for w in weights]}  # [layer][head]
    cut = f", cut to the first {len(labels)}" if truncated else ""
    text = [
        "## Attention", "",
        f"Prompt: `{prompt}` ({len(labels)} tokens{cut}): " + " ".join(f"`{t}`" for t in labels), "",
        "Row = query token, column = the key it attends to; causal, so everything above the diagonal is 0. "
        f"Heads under the same kv head ({model.config.num_query_groups} query heads per kv head) share their keys "
        "and values but not their queries. summary.json has, per head, how many tokens back it looks on average "
        "(`mean_distance`) and the weight it puts on the first token (`first_token_share`).", "",
        "Formula: `softmax(Q Kᵀ / sqrt(head_dim) + causal mask) V`, with K and V repeated for each query head "
        "of their group.", "",
        "Code: " + source(Attention._eager, repeat_kv) + ".", "",
    ]
    text += [f"![layer {i}]({f.name})" for i, f in enumerate(files)] + [""]
    return Section("attention", data, files, text)
