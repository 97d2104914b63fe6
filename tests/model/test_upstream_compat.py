"""Upstream MiniMind checkpoints load unchanged: our state-dict keys and shapes are upstream's.

(Loading upstream-style files, strictly and with a report of what does not fit, is tested in
tests/tools/test_loading.py; logits against independent implementations in test_parity_hf.py.)"""

import pytest
import torch

from minimind.model import MiniMindConfig, MiniMindForCausalLM


def upstream_keys(cfg: MiniMindConfig) -> set[str]:
    """The state-dict keys upstream MiniMind's model_minimind.py produces for this config."""
    keys = {"model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"}
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        keys |= {p + f"self_attn.{n}_proj.weight" for n in "qkvo"}
        keys |= {p + "input_layernorm.weight", p + "post_attention_layernorm.weight"}
        if cfg.qk_norm:
            keys |= {p + "self_attn.q_norm.weight", p + "self_attn.k_norm.weight"}
        mlps = [p + "mlp."]
        if cfg.use_moe:
            keys.add(p + "mlp.gate.weight")
            mlps = [p + f"mlp.experts.{j}." for j in range(cfg.num_experts)]
            mlps += [p + f"mlp.shared_experts.{j}." for j in range(cfg.n_shared_experts)]
        keys |= {m + f"{n}_proj.weight" for m in mlps for n in ("gate", "up", "down")}
    return keys


@pytest.mark.parametrize("preset", ["small", "base", "moe", "minimind3", "minimind3_moe"])
def test_state_dict_keys_and_shapes_are_upstreams(preset):
    cfg = MiniMindConfig.from_preset(preset)
    with torch.device("meta"):
        state = MiniMindForCausalLM(cfg).state_dict()
    assert set(state) == upstream_keys(cfg)
    h, d = cfg.hidden_size, cfg.head_dim
    assert state["model.layers.0.self_attn.k_proj.weight"].shape == (cfg.num_key_value_heads * d, h)
    if cfg.use_moe:
        assert state["model.layers.0.mlp.gate.weight"].shape == (cfg.num_experts, h)
