"""The stage-two figures of `minimind.inspect` (rope, norm, swiglu, kv_cache): the numbers behind each
picture, from a tiny model, checked against what the component must do and against a by-hand computation."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from minimind.errors import ToolError
from minimind.inspect import FIGURES, parse_show
from minimind.inspect.kv_cache import kv_cache_data, variant_heads
from minimind.inspect.norm import norm_data
from minimind.inspect.rope import rope_data
from minimind.inspect.swiglu import NEAR_ZERO, swiglu_data
from tools_helpers import tiny_config

IDS = [5, 17, 42, 8, 99, 3, 250, 61, 7, 12]


def test_show_takes_all_one_several_or_a_list_and_refuses_unknown_names():
    assert parse_show("all") == list(FIGURES) == ["parameters", "norm", "rope", "attention", "swiglu", "kv_cache"]
    assert parse_show("kv_cache,rope") == parse_show(["kv_cache", "rope"]) == ["rope", "kv_cache"]  # guide order
    with pytest.raises(ToolError, match="ropes is not a figure: choose show=all, or any of parameters, norm"):
        parse_show("ropes")


def test_rope_curve_is_symmetric_peaks_at_zero_and_depends_only_on_distance():
    data = rope_data(tiny_config(), query=torch.randn(16))
    distances, dots = data["distances"], data["dots"]
    assert distances[0] == -distances[-1] > 0 and len(distances) == 2 * distances[0] + 1
    assert dots == pytest.approx(dots[::-1], abs=1e-5)  # symmetric in m - n
    assert distances[max(range(len(dots)), key=dots.__getitem__)] == 0
    assert dots[distances.index(0)] == pytest.approx(1.0)  # |v|^2 / head_dim for the all-ones vector
    assert data["shifted_dots"] == pytest.approx(dots, abs=1e-4)  # both positions moved: the same curve
    # a rotation keeps the query's length at every position
    assert data["norms"] == pytest.approx([data["query_norm"]] * len(data["norms"]), rel=1e-5)
    # theta_i = base^(-2i/d): pair 0 turns once per 2*pi tokens, slower pairs later
    assert data["wavelengths"][0] == pytest.approx(2 * math.pi)
    assert data["wavelengths"] == sorted(data["wavelengths"]) and "unscaled_dots" not in data


def test_rope_with_yarn_stretches_only_the_slow_pairs():
    yarn = {"type": "yarn", "factor": 4, "original_max_position_embeddings": 64}
    data = rope_data(tiny_config(rope_scaling=yarn))
    scaled, plain = data["wavelengths"], data["unscaled_wavelengths"]
    assert scaled[0] == pytest.approx(plain[0])  # fast pairs: kept
    assert scaled[-1] == pytest.approx(4 * plain[-1])  # slow pairs: slowed down by the factor
    assert "unscaled_dots" in data and data["dots"] != data["unscaled_dots"]
    assert data["dots"] == pytest.approx(data["dots"][::-1], abs=1e-5)


@pytest.mark.parametrize("overrides", [{}, {"qk_norm": True}])
def test_norm_leaves_unit_rms_before_the_gain(make_model, overrides):
    model = make_model(**overrides)  # gains drawn in [0.5, 1.5]
    data = norm_data(model, IDS)
    layers = model.config.num_hidden_layers
    assert len(data["norms"]) == layers * (4 if overrides else 2) + 1
    by_name = dict(model.named_modules())
    for row in data["norms"]:
        assert len(row["rms_in"]) == len(IDS)
        # y / g has RMS sqrt(ms / (ms + eps)): 1 up to eps, by hand from the input's mean square ms
        expected = [r / math.sqrt(r * r + row["eps"]) for r in row["rms_in"]]
        assert row["rms_before_gain"] == pytest.approx(expected, rel=1e-4)
        gain = by_name[row["name"]].weight.detach()
        assert row["gain"]["mean"] == pytest.approx(float(gain.mean())) and row["gain"]["min"] >= 0.5
    labels = [r["label"] for r in data["norms"]]
    assert labels[:3] == (["0 attn-in", "0 q", "0 k"] if overrides else ["0 attn-in", "0 mlp-in", "1 attn-in"])
    assert data["norms"][-1]["name"] == "model.norm" and data["norms"][-1]["label"] == "final"

    # the first norm by hand: its input is the embedding, its output x / sqrt(mean(x^2) + eps) * g
    first = data["norms"][0]
    x = model.model.embed_tokens.weight[IDS].detach()
    y = x / (x.pow(2).mean(-1, keepdim=True) + first["eps"]).sqrt() * model.model.layers[0].input_layernorm.weight
    assert first["rms_in"] == pytest.approx(x.pow(2).mean(-1).sqrt().tolist(), rel=1e-5)
    assert first["rms_out"] == pytest.approx(y.pow(2).mean(-1).sqrt().tolist(), rel=1e-4)


def test_swiglu_gated_units_are_the_models_product(make_model):
    model = make_model(num_hidden_layers=3)
    data = swiglu_data(model, IDS, layer=1)
    assert data["layer"] == 1 and len(data["layers"]) == 3
    width = model.config.intermediate_size
    for row in data["layers"]:
        assert row["units"] == len(IDS) * width and row["product_max_error"] < 1e-6
    assert torch.tensor(data["gated"]) == pytest.approx(
        (F.silu(torch.tensor(data["gate"])) * torch.tensor(data["up"])).tolist(), abs=1e-6)

    # by hand, layer 0: the block's own modules on the embedded prompt, then the share below the threshold
    block = model.model.layers[0]
    with torch.no_grad():
        x = model.model.embed_tokens(torch.tensor([IDS]))
        positions = torch.arange(len(IDS))[None]
        rope = (model.model.rope_cos[positions], model.model.rope_sin[positions])
        x = x + block.self_attn(block.input_layernorm(x), rope)[0]
        normed = block.post_attention_layernorm(x)
        h = F.silu(block.mlp.gate_proj(normed)) * block.mlp.up_proj(normed)
    share = float((h.abs() < NEAR_ZERO * h.pow(2).mean().sqrt()).float().mean())
    assert data["layers"][0]["near_zero_share"] == pytest.approx(share)
    assert 0 < share < 1


def test_swiglu_reads_every_expert_of_an_moe_layer_and_refuses_a_missing_layer(make_model):
    model = make_model(use_moe=True, num_experts=4, num_experts_per_tok=2, n_shared_experts=1)
    data = swiglu_data(model, IDS)  # the middle layer by default
    assert data["layer"] == 1
    # each token visits its top-2 experts and the shared one
    assert data["layers"][0]["units"] == len(IDS) * (2 + 1) * model.config.moe_intermediate_size
    with pytest.raises(ToolError, match="layer=5 but the model has 2 layers"):
        swiglu_data(model, IDS, layer=5)


@pytest.mark.parametrize(("kv_heads", "variants"), [(2, [4, 2, 1]), (4, [4, 2, 1]), (1, [4, 2, 1])])
def test_kv_cache_bytes_scale_with_kv_heads_and_match_the_real_cache(make_model, kv_heads, variants):
    model = make_model(num_key_value_heads=kv_heads)  # 2 layers, 4 query heads, head_dim 16, fp32
    assert variant_heads(model.config) == variants
    data = kv_cache_data(model, IDS, new_tokens=6, repeats=1)
    per_token = {v["kv_heads"]: v["bytes_per_token"] for v in data["variants"]}
    assert per_token == {k: 2 * 2 * k * 16 * 4 for k in variants}  # 2 (k, v) x layers x kv x head_dim x 4 bytes
    assert [v["this_model"] for v in data["variants"]] == [k == kv_heads for k in variants]
    for v in data["variants"]:  # the caches the attention really returned, at every measured length
        assert v["measured"] == {str(n): n * v["bytes_per_token"] for n in data["lengths"]}
    assert data["prompt_cache_bytes"] == len(IDS) * per_token[kv_heads]

    decode = data["decode"]
    assert decode["same_tokens"]  # cached decoding = full decoding
    assert len(decode["with_cache_s"]) == len(decode["without_cache_s"]) == decode["new_tokens"] == 6
    assert decode["sequence_lengths"] == list(range(len(IDS), len(IDS) + 6))
    assert all(t > 0 for t in decode["with_cache_s"] + decode["without_cache_s"])


def test_kv_cache_decodes_no_further_than_the_context(make_model):
    model = make_model(max_position_embeddings=16)
    data = kv_cache_data(model, IDS, new_tokens=64, repeats=1)
    assert data["decode"]["new_tokens"] == 16 - len(IDS)
    assert data["lengths"] == [1, 16]
