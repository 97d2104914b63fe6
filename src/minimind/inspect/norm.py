"""`show=norm`: what each RMSNorm of the model does to the prompt's activations, and its learned gains.

Forward hooks on every `minimind.model.norm.RMSNorm` of the model record its input and
output on the prompt. "Before the gain" is the same input through an `RMSNorm` of the same
size and eps whose gain is 1: the model's own class, not a re-implementation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from minimind.inspect.figures import Section, new_figure, save, source
from minimind.model.norm import RMSNorm


def token_rms(x: torch.Tensor) -> list[float]:
    """Root mean square over the last dim, one value per token: (1, T, D) -> T values; per-head
    inputs (1, T, H, D) of q/k norms -> the mean over heads, T values."""
    rms = x.float().pow(2).mean(-1).sqrt()[0]
    return (rms.mean(-1) if rms.dim() == 2 else rms).tolist()


def short_name(name: str) -> str:
    """`model.layers.3.post_attention_layernorm` -> `3 post-attn`; `model.norm` -> `final`."""
    parts = name.split(".")
    if name == "model.norm":
        return "final"
    kind = {"input_layernorm": "attn-in", "post_attention_layernorm": "mlp-in",
            "q_norm": "q", "k_norm": "k"}.get(parts[-1], parts[-1])
    return f"{parts[2]} {kind}" if len(parts) > 2 and parts[1] == "layers" else name


@torch.inference_mode()
def norm_data(model, ids: list[int]) -> dict[str, Any]:
    """Per-token RMS before and after every RMSNorm of `model` on `ids`, before the gain, and the gains."""
    captured: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    norms = [(name, module) for name, module in model.named_modules() if isinstance(module, RMSNorm)]
    hooks = [module.register_forward_hook(lambda m, args, out, name=name: captured.__setitem__(name, (args[0], out)))
             for name, module in norms]
    try:
        device = next(model.parameters()).device
        model(torch.tensor([ids], device=device))
    finally:
        for hook in hooks:
            hook.remove()
    rows = []
    for name, module in norms:
        x, y = captured[name]
        unit = RMSNorm(module.weight.numel(), eps=module.eps).to(x.device)  # the same norm with gain 1
        gain = module.weight.detach().float().cpu()
        rows.append({
            "name": name, "label": short_name(name), "eps": module.eps,
            "rms_in": token_rms(x), "rms_out": token_rms(y), "rms_before_gain": token_rms(unit(x)),
            "gain": {"mean": float(gain.mean()), "std": float(gain.std()) if gain.numel() > 1 else 0.0,
                     "min": float(gain.min()), "max": float(gain.max()),
                     "quartiles": torch.quantile(gain, torch.tensor([0.25, 0.5, 0.75])).tolist()},
        })
    return {"tokens": len(ids), "norms": rows}


def draw(data: dict[str, Any]):
    rows = data["norms"]
    n = len(rows)
    fig = new_figure(max(9.0, 0.42 * n + 3), 8.5)
    ax_rms, ax_gain = fig.subplots(2, 1, sharex=True)
    x = range(n)
    for key, label, colour, style in (("rms_in", "before (input)", "tab:red", dict(lw=1.5)),
                                      ("rms_out", "after (output)", "tab:blue", dict(lw=4, alpha=0.5)),
                                      ("rms_before_gain", "after, before the gain", "tab:green", dict(lw=1, ls="--"))):
        mid = [sorted(r[key])[len(r[key]) // 2] for r in rows]
        ax_rms.plot(x, mid, marker="o", ms=4, color=colour, label=f"{label}: median over tokens", **style)
        ax_rms.fill_between(x, [min(r[key]) for r in rows], [max(r[key]) for r in rows], color=colour, alpha=0.15)
    ax_rms.set_yscale("log")
    ax_rms.set(ylabel="per-token RMS (log)", title=f"RMS of the activations around each RMSNorm "
               f"({data['tokens']} prompt tokens; band: min to max over tokens)")
    ax_rms.legend(fontsize=8)

    stats = [{"med": r["gain"]["quartiles"][1], "q1": r["gain"]["quartiles"][0], "q3": r["gain"]["quartiles"][2],
              "whislo": r["gain"]["min"], "whishi": r["gain"]["max"], "label": r["label"]} for r in rows]
    ax_gain.bxp(stats, positions=list(x), showfliers=False, widths=0.5)
    ax_gain.axhline(1.0, color="grey", lw=0.8, ls=":")
    ax_gain.set(ylabel="gain g (per dimension)", title="learned gains: quartiles, min to max (1 at initialisation)")
    ax_gain.set_xticks(list(x), [r["label"] for r in rows], rotation=60, fontsize=8)
    return fig


def section(model, out: Path, ids: list[int], **_: Any) -> Section:
    data = norm_data(model, ids)
    path = save(draw(data), out / "norm.png")
    rows = data["norms"]
    rms_in = [v for r in rows for v in r["rms_in"]]
    unit = [v for r in rows for v in r["rms_before_gain"]]
    gains = [r["gain"] for r in rows]
    all_ones = all(g["min"] == g["max"] == 1.0 for g in gains)
    gain_text = ("Every gain is still 1 (an untrained initialisation)." if all_ones else
                 f"The learned gains range from {min(g['min'] for g in gains):.3g} to {max(g['max'] for g in gains):.3g}: "
                 "they are what sets each output's scale (bottom).")
    text = [
        "## RMSNorm: every activation rescaled to unit RMS, then a learned gain", "",
        f"The model has {len(rows)} RMSNorms (before attention and before the MLP of every layer, and one at the "
        f"end). On this prompt their inputs have a per-token RMS from {min(rms_in):.3g} to {max(rms_in):.3g} "
        f"(red): the residual stream grows layer after layer. Divided by its RMS, every token leaves at "
        f"{min(unit):.4f} to {max(unit):.4f} before the gain (green; just under 1 where eps matters against a small "
        f"input), and the gain g then sets the scale per dimension. {gain_text}", "",
        "Formula: `y = x / sqrt(mean(x²) + eps) * g` over the hidden dimension, per token; no mean subtracted, "
        "no bias (LayerNorm has both).", "",
        "Code: " + source(RMSNorm.forward) + "; the blocks that call it: `minimind.model.transformer.MiniMindBlock`.",
        "", "![RMSNorm](norm.png)", "",
    ]
    return Section("norm", data, [path], text)
