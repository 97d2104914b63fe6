"""Strict loading with a useful error: every key that does not fit, and the settings that would.

A checkpoint is loaded whole or not at all (never a `strict=False` load that silently keeps
random weights). When it does not fit the chosen config, the message lists the missing,
unexpected and mis-shaped keys (layers folded: `model.layers.0-7.mlp.up_proj.weight`), what
the checkpoint's shapes say about its config, and the `model=PRESET` / `model.<field>=`
overrides that would load it.
"""

from __future__ import annotations

import re
from typing import Any

import torch

from minimind.errors import CheckpointError
from minimind.model import MiniMindConfig, MiniMindForCausalLM
from minimind.model.presets import preset_fields, preset_names

LAYER_KEY = re.compile(r"^model\.layers\.(\d+)\.(.+)$")


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


def with_tied_head(state: dict[str, torch.Tensor], config: MiniMindConfig) -> dict[str, torch.Tensor]:
    """Hugging Face leaves a tied lm_head out of its files: it is the embedding matrix."""
    if config.tie_word_embeddings and "lm_head.weight" not in state and "model.embed_tokens.weight" in state:
        return {**state, "lm_head.weight": state["model.embed_tokens.weight"]}
    return state


def mismatch_report(state: dict[str, torch.Tensor], config: MiniMindConfig, source: str) -> str | None:
    """None if `state` fits `config` exactly, else a message listing every mismatched key and the fix."""
    state = with_tied_head(state, config)
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
    config = model.config
    state = with_tied_head(state, config)
    report = mismatch_report(state, config, source)
    if report:
        raise CheckpointError(report)
    model.load_state_dict(state, strict=True)
    if config.tie_word_embeddings:  # load_state_dict copies in place, so the tie survives; make sure
        assert model.lm_head.weight is model.model.embed_tokens.weight
