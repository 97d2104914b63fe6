"""`show=swiglu`: the feed-forward's gate at work on the prompt, from hooks on the model's own projections.

Every `minimind.model.feedforward.FeedForward` of the model (the MLP of a dense layer; each
expert and shared expert of an MoE layer) is hooked: the output of `gate_proj` (g), of
`up_proj` (u) and the input of `down_proj` (h, the product the model really computed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from minimind.errors import ToolError
from minimind.inspect.figures import Section, new_figure, save, source
from minimind.model.feedforward import FeedForward

NEAR_ZERO = 0.1  # a gated unit counts as near zero when |h| < NEAR_ZERO x the layer's RMS of h
MAX_POINTS = 6000  # points drawn in the scatter plots (an even subsample)


def pick_layer(config, layer: int | None) -> int:
    """`layer`, or the middle layer when None; refuses one the model does not have."""
    n = config.num_hidden_layers
    if layer is None:
        return n // 2
    if not -n <= layer < n:
        raise ToolError(f"layer={layer} but the model has {n} layers: choose 0..{n - 1} (or null for the middle one)")
    return layer % n


@torch.inference_mode()
def swiglu_data(model, ids: list[int], layer: int | None = None) -> dict[str, Any]:
    """Gate, up and gated activations of every layer's feed-forward on `ids`; points of one `layer`."""
    layer = pick_layer(model.config, layer)
    captured: dict[tuple[int, str], list[torch.Tensor]] = {}

    def keep(key):
        return lambda module, args, out: captured.setdefault(key, []).append(
            (args[0] if key[1] == "h" else out).detach().float().reshape(-1))

    hooks = []
    for i, block in enumerate(model.model.layers):
        for ffn in (m for m in block.mlp.modules() if isinstance(m, FeedForward)):
            hooks += [ffn.gate_proj.register_forward_hook(keep((i, "g"))),
                      ffn.up_proj.register_forward_hook(keep((i, "u"))),
                      ffn.down_proj.register_forward_hook(keep((i, "h")))]
    try:
        model(torch.tensor([ids], device=next(model.parameters()).device))
    finally:
        for hook in hooks:
            hook.remove()

    layers = []
    for i in range(model.config.num_hidden_layers):
        g, u, h = (torch.cat(captured[(i, part)]).cpu() for part in "guh")
        rms = h.pow(2).mean().sqrt()
        layers.append({"units": h.numel(), "rms": float(rms),
                       "near_zero_share": float((h.abs() < NEAR_ZERO * rms).float().mean()),
                       "gate_negative_share": float((g < 0).float().mean()),
                       # the model's product against the formula, by hand: 0 up to rounding
                       "product_max_error": float((h - F.silu(g) * u).abs().max())})
    g, u, h = (torch.cat(captured[(layer, part)]).cpu() for part in "guh")
    keep_idx = torch.linspace(0, g.numel() - 1, min(MAX_POINTS, g.numel())).long()
    return {"layer": layer, "near_zero": NEAR_ZERO, "tokens": len(ids), "layers": layers,
            "gate": g[keep_idx].tolist(), "silu_gate": F.silu(g[keep_idx]).tolist(), "up": u[keep_idx].tolist(),
            "gated": h[keep_idx].tolist()}


def draw(data: dict[str, Any]):
    fig = new_figure(16, 4.8)
    ax_silu, ax_gate, ax_share = fig.subplots(1, 3)
    g, s, u, h = (torch.tensor(data[k]) for k in ("gate", "silu_gate", "up", "gated"))
    layer = data["layer"]

    grid = torch.linspace(min(float(g.min()), -4.0), max(float(g.max()), 4.0), 200)
    ax_silu.plot(grid, F.silu(grid), color="grey", lw=1, label="silu(z) = z·sigmoid(z)")
    ax_silu.scatter(g, s, s=4, alpha=0.4, color="tab:blue", label=f"layer {layer}'s units on the prompt")
    ax_silu.axhline(0, color="black", lw=0.5)
    ax_silu.set(xlabel="gate pre-activation g = gate_proj(x)", ylabel="silu(g)",
                title="the gate: silu closes (≈ 0) for negative g")
    ax_silu.legend(fontsize=8)

    limit = float(h.abs().max()) or 1.0
    points = ax_gate.scatter(u, s, c=h, s=4, cmap="coolwarm", vmin=-limit, vmax=limit)
    ax_gate.axhline(0, color="black", lw=0.5)
    ax_gate.axvline(0, color="black", lw=0.5)
    ax_gate.set(xlabel="up projection u = up_proj(x)", ylabel="silu(g)",
                title=f"layer {layer}: h = silu(g) · u (colour)")
    fig.colorbar(points, ax=ax_gate, label="h, what down_proj reads")

    shares = [row["near_zero_share"] for row in data["layers"]]
    bars = ax_share.bar(range(len(shares)), [100 * v for v in shares], color="tab:blue")
    bars[layer].set_color("tab:orange")
    ax_share.set(xlabel="layer", ylabel="% of gated units near zero",
                 title=f"|h| < {data['near_zero']} x RMS(h), per layer ({data['tokens']} tokens)")
    ax_share.set_xticks(range(len(shares)))
    return fig


def section(model, out: Path, ids: list[int], layer: int | None = None, **_: Any) -> Section:
    data = swiglu_data(model, ids, layer)
    path = save(draw(data), out / "swiglu.png")
    row = data["layers"][data["layer"]]
    shares = [r["near_zero_share"] for r in data["layers"]]
    text = [
        "## SwiGLU: a feed-forward with a learned gate", "",
        f"The up projection u carries the content and silu(g) decides per unit how much of it passes: in layer "
        f"{data['layer']}, {100 * row['gate_negative_share']:.0f}% of the gate pre-activations are negative, where "
        f"silu squeezes them towards 0 (left), and the product h is what the down projection reads (middle). Across "
        f"the layers {100 * min(shares):.0f}% to {100 * max(shares):.0f}% of the gated units are near zero "
        f"(|h| < {data['near_zero']} x the layer's RMS of h; right): the gate decides per token which units pass, "
        "where in a plain MLP one projection both carries the content and, through its activation, decides.", "",
        "Formula: `FFN(x) = down_proj(silu(gate_proj(x)) * up_proj(x))`, `silu(z) = z * sigmoid(z)`; a plain MLP "
        "is `down(act(up(x)))` (two matrices instead of three).", "",
        "Code: " + source(FeedForward.forward) + "; MoE layers run several of them: `minimind.model.moe.MoEFeedForward`.",
        "", "![SwiGLU](swiglu.png)", "",
    ]
    return Section("swiglu", data, [path], text)
