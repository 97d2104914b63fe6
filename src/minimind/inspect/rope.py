"""`show=rope`: what rotary position embedding does to a vector, from the model's own RoPE tables.

Three panels: the wavelength of every rotated pair (with and without YaRN when the config
uses it), one query vector turning as its position grows, and the dot product of a vector
with itself placed at two positions, against their distance. Everything comes from
`minimind.model.rope` (`rope_frequencies`, `precompute_rope`, `apply_rope`), the functions
the model calls.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from minimind.inspect.figures import Section, new_figure, save, source
from minimind.model import MiniMindConfig
from minimind.model.rope import apply_rope, precompute_rope, rope_frequencies

TRAJECTORY_POSITIONS = 48  # positions drawn for the turning query
MAX_DISTANCE = 512  # the relative-distance curve spans -MAX_DISTANCE..MAX_DISTANCE (less for short contexts)
SHIFT = 100  # the curve is computed again with both positions moved by this much


def _rotate(vector: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """`vector` (D,) placed at each of `positions` (P,) -> (P, D), through the model's `apply_rope`."""
    x = vector.expand(len(positions), -1)[None, None]  # (batch 1, heads 1, P, D)
    return apply_rope(x, cos[positions][None], sin[positions][None])[0, 0]


def _tables(config: MiniMindConfig, scaling: dict[str, Any] | None):
    return precompute_rope(config.head_dim, config.rope_theta, config.max_position_embeddings, scaling)


def relative_curve(config: MiniMindConfig, vector: torch.Tensor, scaling: dict[str, Any] | None,
                   max_distance: int, start: int = 0) -> tuple[list[int], list[float]]:
    """<RoPE(v, m), RoPE(v, n)> / head_dim for m - n in -max_distance..max_distance; the query
    sits at position start + max_distance, the keys at start..start + 2 * max_distance."""
    cos, sin = _tables(config, scaling)
    m = start + max_distance
    keys = torch.arange(start, start + 2 * max_distance + 1)
    q = _rotate(vector, cos, sin, torch.tensor([m]))[0]
    k = _rotate(vector, cos, sin, keys)
    dots = (k @ q) / config.head_dim
    return (m - keys).tolist(), dots.tolist()


@torch.inference_mode()
def first_query(model, ids: list[int]) -> torch.Tensor:
    """The query of head 0 for the prompt's last token in layer 0, before RoPE, from the model's own modules."""
    layer = model.model.layers[0]
    x = layer.input_layernorm(model.model.embed_tokens(torch.tensor([ids], device=model.lm_head.weight.device)))
    q = layer.self_attn.q_proj(x)[0, -1].view(model.config.num_attention_heads, model.config.head_dim)[0]
    return (layer.self_attn.q_norm(q) if layer.self_attn.q_norm is not None else q).float().cpu()


def rope_data(config: MiniMindConfig, query: torch.Tensor | None = None) -> dict[str, Any]:
    """The numbers behind `rope.png`. `query` (head_dim,) is the vector turned across positions
    (default: all ones); the relative-distance curve uses the all-ones vector (the RoPE paper's choice)."""
    d, n_ctx = config.head_dim, config.max_position_embeddings
    ones = torch.ones(d)
    query = ones if query is None else query.float().reshape(d)
    scaling = config.rope_scaling
    freqs, attention_factor = rope_frequencies(d, config.rope_theta, n_ctx, scaling)
    unscaled, _ = rope_frequencies(d, config.rope_theta, n_ctx, None)

    cos, sin = _tables(config, scaling)
    positions = torch.arange(min(TRAJECTORY_POSITIONS, n_ctx))
    rotated = _rotate(query, cos, sin, positions)  # (P, D)
    pairs = sorted({0, d // 8, d // 2 - 1})  # fast, middle, slow
    trajectories = {str(i): {"x": rotated[:, i].tolist(), "y": rotated[:, i + d // 2].tolist(),
                             "radians_per_token": float(freqs[i])} for i in pairs}

    distance = min(MAX_DISTANCE, (n_ctx - 1 - SHIFT) // 2)
    distances, dots = relative_curve(config, ones, scaling, distance)
    _, shifted = relative_curve(config, ones, scaling, distance, start=SHIFT)
    data = {
        "head_dim": d, "theta": config.rope_theta, "context_tokens": n_ctx, "yarn": scaling,
        "attention_factor": attention_factor,
        "frequencies": freqs.tolist(), "wavelengths": (2 * math.pi / freqs).tolist(),
        "unscaled_wavelengths": (2 * math.pi / unscaled).tolist(),
        "query": query.tolist(), "query_norm": float(query.norm()),
        "positions": positions.tolist(), "trajectories": trajectories,
        "norms": rotated.norm(dim=-1).tolist(),
        "distances": distances, "dots": dots,
        "shift": SHIFT, "shifted_dots": shifted,
    }
    if scaling is not None:
        data["unscaled_dots"] = relative_curve(config, ones, None, distance)[1]
    return data


def draw(data: dict[str, Any]):
    fig = new_figure(17, 5)
    grid = fig.add_gridspec(1, 3, width_ratios=[1.1, 1.05, 1.3])
    ax_wave = fig.add_subplot(grid[0])
    turn_axes = grid[1].subgridspec(2, 2).subplots()
    ax_dist = fig.add_subplot(grid[2])

    pairs = range(len(data["wavelengths"]))
    yarn = data["yarn"] is not None
    ax_wave.semilogy(pairs, data["wavelengths"], "o-", ms=3, label="with YaRN" if yarn else "this model")
    if yarn:
        ax_wave.semilogy(pairs, data["unscaled_wavelengths"], "--", color="grey", label="without YaRN")
        original = data["yarn"].get("original_max_position_embeddings", 2048)
        ax_wave.axhline(original, color="tab:orange", lw=0.8, ls=":", label=f"trained length ({original:,})")
    ax_wave.axhline(data["context_tokens"], color="tab:red", lw=0.8, ls=":",
                    label=f"context ({data['context_tokens']:,} tokens)")
    ax_wave.set(xlabel="pair i (dims i and i + head_dim/2)", ylabel="wavelength 2π/θ_i (tokens)",
                title=f"one turn takes 2π/θ_i tokens\nθ_i = {data['theta']:g}^(-2i/{data['head_dim']})")
    ax_wave.legend(fontsize=8)

    last = data["positions"][-1]
    flat = list(turn_axes.flat)
    for ax, (pair, xy) in zip(flat, data["trajectories"].items()):
        radius = max(math.hypot(x, y) for x, y in zip(xy["x"], xy["y"])) or 1.0
        circle = torch.linspace(0, 2 * math.pi, 100)
        ax.plot(radius * circle.cos(), radius * circle.sin(), color="grey", lw=0.5)
        points = ax.scatter(xy["x"], xy["y"], c=data["positions"], cmap="viridis", s=10, zorder=3)
        ax.plot([0, xy["x"][0]], [0, xy["y"][0]], color="black", lw=1)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"pair {pair}: {xy['radians_per_token']:.3g} rad/token", fontsize=9)
    norms = data["norms"]
    flat[-1].plot(data["positions"], norms, color="black")
    flat[-1].set_ylim(0, 1.2 * max(norms))
    flat[-1].set_title("|query| at each position", fontsize=9)
    flat[-1].set_xlabel("position", fontsize=8)
    fig.colorbar(points, ax=flat, shrink=0.6, label=f"position 0..{last}")

    ax_dist.plot(data["distances"], data["dots"], lw=1, label="query at m, key at n")
    ax_dist.plot(data["distances"], data["shifted_dots"], ":", lw=1.5, color="black",
                 label=f"both moved by {data['shift']} (the same curve)")
    if "unscaled_dots" in data:
        ax_dist.plot(data["distances"], data["unscaled_dots"], "--", color="grey", lw=1, label="without YaRN")
    ax_dist.set(xlabel="relative distance m - n (tokens)", ylabel="<RoPE(1, m), RoPE(1, n)> / head_dim",
                title="the dot product depends only on m - n\n(v = all ones at both positions)")
    ax_dist.legend(fontsize=8)
    return fig


def section(model, out: Path, ids: list[int], **_: Any) -> Section:
    data = rope_data(model.config, first_query(model, ids))
    path = save(draw(data), out / "rope.png")
    waves = data["wavelengths"]
    peak = max(range(len(data["dots"])), key=data["dots"].__getitem__)
    yarn = (f" YaRN (factor {data['yarn'].get('factor', 16)}) stretches the slow pairs' wavelengths, the grey "
            "lines are the same without it." if data["yarn"] else "")
    factor = data["attention_factor"]
    scaled = f", times YaRN's attention factor {factor:g}" if factor != 1 else ""
    text = [
        "## RoPE: position as a rotation", "",
        f"Each of the {len(waves)} pairs of query/key dimensions turns by an angle proportional to the position, "
        f"pair i at frequency θ_i = {data['theta']:g}^(-2i/{data['head_dim']}): pair 0 turns once every "
        f"{waves[0]:.1f} tokens, the slowest pair once every {waves[-1]:,.0f} (left). A rotation keeps a vector's "
        f"length (middle: a real query, head 0 of layer 0 for the prompt's last token, {data['query_norm']:.3f} long "
        f"at every position from 0 to {data['positions'][-1]}{scaled}), and the dot product of a rotated query and "
        f"key depends only on their distance m - n (right: symmetric, largest at distance "
        f"{data['distances'][peak]}, and the dotted copy moved by {data['shift']} positions lies on it).{yarn}", "",
        "Formula: `RoPE(x, m) = x * cos(m θ) + rotate_half(x) * sin(m θ)`, `rotate_half(x1, x2) = (-x2, x1)`; "
        "the model rotates q and k, never v.", "",
        "Code: " + source(rope_frequencies, precompute_rope, apply_rope) + ".", "",
        "![RoPE](rope.png)", "",
    ]
    return Section("rope", data, [path], text)
