"""`minimind.inspect`: attention heatmaps, parameter breakdown, GQA saving, KV-cache bytes: the right numbers;
every figure explained in summary.md; the command on a random initialisation and on a trained run."""

from __future__ import annotations

import json

import pytest

from commands import assert_clean_failure, run_main
from minimind.inspect import FIGURES, gqa_comparison, inspect_model, main, tensor_breakdown
from minimind.model.params import parameter_breakdown as config_breakdown
from tools_helpers import run_tool, tiny_config

PNG = b"\x89PNG\r\n\x1a\n"
ONE_FIGURE = {"parameters": "parameters.png", "norm": "norm.png", "rope": "rope.png", "swiglu": "swiglu.png",
              "kv_cache": "kv_cache.png"}


def assert_every_figure_explained(out, layers: int) -> str:
    """Every figure is a PNG, linked from summary.md in a section with its formula and its code."""
    summary = (out / "summary.md").read_text()
    sections = summary.split("\n## ")[1:]
    assert len(sections) == len(FIGURES)
    for section in sections:
        assert "\nFormula: `" in section and "\nCode: `minimind." in section, section
    pngs = [*ONE_FIGURE.values(), *(f"attention_layer_{i:02d}.png" for i in range(layers))]
    for name in pngs:
        assert (out / name).read_bytes()[:8] == PNG
        assert f"]({name})" in summary
    assert sorted(p.name for p in out.iterdir()) == sorted(pngs + ["summary.json", "summary.md"])
    return summary


def test_writes_one_heatmap_per_layer_the_chart_and_the_summary(make_model, tokenizer, tmp_path):
    model = make_model(num_hidden_layers=3)  # 4 query heads, 2 kv heads, head_dim 16
    report = inspect_model(model, tokenizer, "Story 1. the red cat sees a dog", tmp_path, max_tokens=8,
                           show=["attention", "parameters"])
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


def test_command_on_a_random_initialisation_draws_everything(tmp_path, capsys, monkeypatch):
    out = tmp_path / "look"
    code, stdout, stderr = run_main(main, ["ckpt=none", "model=tiny", "decode_tokens=4", f"out={out}"],
                                    capsys, monkeypatch)
    assert code == 0, stderr
    assert "initialised model=tiny at random initialisation (seed 0): 1.61M parameters" in stderr
    assert f"wrote 9 figures (parameters, norm, rope, attention, swiglu, kv_cache) and summary.md to {out}" in stdout
    summary = assert_every_figure_explained(out, layers=4)
    assert summary.startswith("# Inside model=tiny at random initialisation (seed 0)")
    assert "Every gain is still 1 (an untrained initialisation)." in summary
    report = json.loads((out / "summary.json").read_text())
    assert report["show"] == list(FIGURES) and all(name in report for name in FIGURES if name != "parameters")
    # the explanations quote this model's numbers: 2 x 4 layers x 2 kv heads x 32 x 4 bytes (fp32) per token
    assert "2,048 bytes per token for this model in its dtype (4 bytes per element" in summary
    assert f"in layer {report['swiglu']['layer']}, " in summary and report["swiglu"]["layer"] == 2


def test_command_draws_only_what_show_names_and_refuses_what_cannot_be(tmp_path, capsys, monkeypatch):
    code, stdout, _ = run_main(main, ["ckpt=none", "model=tiny", "show=[kv_cache,rope]", "decode_tokens=2",
                                      f"out={tmp_path / 'two'}"], capsys, monkeypatch)
    assert code == 0 and "wrote 2 figures (rope, kv_cache)" in stdout
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["kv_cache.png", "rope.png", "summary.json",
                                                                     "summary.md"]
    assert_clean_failure(*run_main(main, ["ckpt=none", "show=heads", f"out={tmp_path}"], capsys, monkeypatch),
                         "heads is not a figure: choose show=all, or any of parameters, norm, rope")
    assert_clean_failure(*run_main(main, ["ckpt=none", "model=tiny", "model.vocab_size=400", f"out={tmp_path}"],
                                   capsys, monkeypatch), "the tokenizer has 6400 tokens but the model only 400")
    assert_clean_failure(*run_main(main, ["ckpt=none", "model=tiny", "show=swiglu", "layer=9", f"out={tmp_path}"],
                                   capsys, monkeypatch), "layer=9 but the model has 4 layers")


@pytest.mark.slow
def test_command_inspects_a_trained_run(trained_run, tmp_path):
    run_dir, _ = trained_run
    out = tmp_path / "look"
    proc = run_tool("inspect", f"ckpt={run_dir}", "prompt=Story 5. the green tree", "decode_tokens=8", f"out={out}")
    assert "wrote 7 figures" in proc.stdout and "KV cache 256 B/token in fp16 (512 B with MHA)" in proc.stdout
    summary = assert_every_figure_explained(out, layers=2)
    assert "Story" in summary
    assert "Every gain is still 1" not in summary and "The learned gains range from" in summary  # trained gains
