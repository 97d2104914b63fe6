"""`minimind.inspect`: attention heatmaps, parameter breakdown, GQA saving, KV-cache bytes: the right numbers."""

from __future__ import annotations

import json

import pytest

from minimind.inspect import gqa_comparison, inspect_model, tensor_breakdown
from minimind.model.params import parameter_breakdown as config_breakdown
from tools_helpers import run_tool, tiny_config

PNG = b"\x89PNG\r\n\x1a\n"


def test_writes_one_heatmap_per_layer_the_chart_and_the_summary(make_model, tokenizer, tmp_path):
    model = make_model(num_hidden_layers=3)  # 4 query heads, 2 kv heads, head_dim 16
    report = inspect_model(model, tokenizer, "Story 1. the red cat sees a dog", tmp_path, max_tokens=8)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["attention_layer_00.png", "attention_layer_01.png", "attention_layer_02.png",
                     "parameters.png", "summary.json", "summary.md"]
    for name in names:
        if name.endswith(".png"):
            assert (tmp_path / name).read_bytes()[:8] == PNG
    assert report["attention"]["truncated"] and len(report["attention"]["tokens"]) == 8

    # KV cache per token = 2 (k, v) x layers x kv_heads x head_dim x bytes per element
    kv = report["gqa"]["kv_cache_bytes_per_token"]
    assert kv["fp16/bf16"] == {"gqa": 2 * 3 * 2 * 16 * 2, "mha": 2 * 3 * 4 * 16 * 2}
    assert kv["fp32"] == {"gqa": 2 * 3 * 2 * 16 * 4, "mha": 2 * 3 * 4 * 16 * 4}
    # GQA against MHA of the same size: k and v projections of hidden x (kv_heads * head_dim), per layer
    assert report["gqa"]["kv_proj_params"] == 2 * 3 * 64 * 2 * 16
    assert report["gqa"]["kv_proj_params_saved"] == 2 * 3 * 64 * (4 - 2) * 16

    summary = (tmp_path / "summary.md").read_text()
    assert "| KV cache per token, fp16/bf16 | 384 B | 768 B | 384 B (50%) |" in summary
    assert "= 2 x 3 x 2 x 16 x 2 = 384 bytes" in summary
    assert f"**{model.num_parameters():,} parameters**" in summary
    for link in ("parameters.png", "attention_layer_00.png", "attention_layer_02.png"):
        assert f"]({link})" in summary
    assert json.loads((tmp_path / "summary.json").read_text())["total_parameters"] == model.num_parameters()


@pytest.mark.parametrize("overrides", [{}, {"tie_word_embeddings": False}, {"qk_norm": True},
                                       {"use_moe": True, "n_shared_experts": 1}])
def test_parameter_breakdown_adds_up(make_model, overrides):
    model = make_model(**overrides)
    parts = tensor_breakdown(model)
    cfg = model.config
    assert sum(parts.values()) == model.num_parameters() == config_breakdown(cfg)["total"]
    assert parts["embedding"] == cfg.vocab_size * cfg.hidden_size
    assert parts["lm_head"] == (0 if cfg.tie_word_embeddings else cfg.vocab_size * cfg.hidden_size)
    assert parts["attention k_proj"] == cfg.num_hidden_layers * cfg.hidden_size * cfg.num_key_value_heads * cfg.head_dim
    if cfg.use_moe:
        assert parts["router"] == cfg.num_hidden_layers * cfg.hidden_size * cfg.num_experts
        assert parts["experts"] == cfg.num_hidden_layers * cfg.num_experts * 3 * cfg.hidden_size * cfg.intermediate_size
        assert "shared experts" in parts and "mlp (SwiGLU)" not in parts
    if cfg.qk_norm:
        assert parts["q/k norms"] == cfg.num_hidden_layers * 2 * cfg.head_dim


def test_mha_and_mqa_comparisons():
    assert gqa_comparison(tiny_config(num_key_value_heads=4))["kv_proj_params_saved"] == 0
    mqa = gqa_comparison(tiny_config(num_key_value_heads=1))
    assert mqa["kind"] == "MQA" and mqa["kv_cache_saving_fraction"] == 0.75


@pytest.mark.slow
def test_command_inspects_a_trained_run(trained_run, tmp_path):
    run_dir, _ = trained_run
    proc = run_tool("inspect", f"ckpt={run_dir}", "prompt=Story 5. the green tree", f"out={tmp_path / 'look'}")
    assert "wrote 2 attention figures" in proc.stdout and "KV cache 256 B/token in fp16 (512 B with MHA)" in proc.stdout
    assert (tmp_path / "look" / "attention_layer_01.png").read_bytes()[:8] == PNG
    assert "Story" in (tmp_path / "look" / "summary.md").read_text()
