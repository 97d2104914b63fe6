"""Upstream MiniMind checkpoints load unchanged: same key names, strict loading, same logits."""

import re

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


def test_upstream_style_fp16_pth_loads_strict_and_gives_same_logits(make_config, tmp_path, tokens):
    cfg = make_config(qk_norm=True, use_moe=True, n_shared_experts=1)
    torch.manual_seed(0)
    source = MiniMindForCausalLM(cfg).eval()
    # Upstream saves `{k: v.half()}` of the state dict as a plain .pth file.
    torch.save({k: v.half() for k, v in source.state_dict().items()}, tmp_path / "pretrain_64.pth")

    target = MiniMindForCausalLM(cfg).eval()
    state = torch.load(tmp_path / "pretrain_64.pth", map_location="cpu", weights_only=True)
    target.load_state_dict(state, strict=True)
    source.load_state_dict({k: v.float() for k, v in state.items()})  # same fp16-rounded values
    with torch.no_grad():
        torch.testing.assert_close(target(tokens).logits, source(tokens).logits)


def test_wrong_shapes_are_refused_with_key_names(make_config):
    small = MiniMindForCausalLM(make_config())
    wider = MiniMindForCausalLM(make_config(num_key_value_heads=4))
    with pytest.raises(RuntimeError, match=re.escape("model.layers.0.self_attn.k_proj.weight")):
        small.load_state_dict(wider.state_dict(), strict=True)
