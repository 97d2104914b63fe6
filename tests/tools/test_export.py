"""`minimind.export`: plain transformers loads the `hf` directory with our logits; `.pth` round-trips."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from minimind.errors import ToolError
from minimind.export import ExportError, export_hf, export_minimind
from minimind.checkpoints import load_checkpoint
from tools_helpers import VOCAB, run_tool

TOKENS = torch.randint(3, VOCAB, (2, 20), generator=torch.Generator().manual_seed(3))
LAYOUTS = {"minimind2": ({}, "LlamaForCausalLM", "llama"),
           "minimind3": ({"qk_norm": True, "rms_norm_eps": 1e-6, "head_dim": 24}, "Qwen3ForCausalLM", "qwen3")}


def same_logits(hf_model, ours, atol=1e-4):
    with torch.no_grad():
        torch.testing.assert_close(hf_model(TOKENS).logits, ours(TOKENS).logits, atol=atol, rtol=0)


@pytest.mark.parametrize("tied", [True, False], ids=["tied", "untied"])
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_hf_export_loads_in_plain_transformers_with_our_logits(make_model, tokenizer, tmp_path, layout, tied):
    overrides, architecture, model_type = LAYOUTS[layout]
    ours = make_model(tie_word_embeddings=tied, **overrides)
    result = export_hf(ours, tokenizer, tmp_path / "hf")
    assert result["max_logit_diff"] <= 1e-4

    theirs = AutoModelForCausalLM.from_pretrained(tmp_path / "hf")  # no trust_remote_code
    assert type(theirs).__name__ == architecture
    same_logits(theirs.eval(), ours)

    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["model_type"] == model_type and config["architectures"] == [architecture]
    assert config["tie_word_embeddings"] is tied and config["head_dim"] == ours.config.head_dim
    for key in ("rope_theta", "rms_norm_eps", "bos_token_id", "eos_token_id", "pad_token_id", "torch_dtype"):
        assert key in config, key
    weights = load_file(tmp_path / "hf" / "model.safetensors")
    assert ("lm_head.weight" in weights) is not tied  # tied: only the embedding, as transformers saves it
    generation = json.loads((tmp_path / "hf" / "generation_config.json").read_text())
    assert generation["eos_token_id"] == [2, 0]

    tok = AutoTokenizer.from_pretrained(tmp_path / "hf")
    messages = [{"role": "user", "content": "Hello"}]
    assert tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) == \
        tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    back = load_checkpoint(tmp_path / "hf")  # and our loader reads it back
    assert back.kind == "hf" and back.config.qk_norm == ours.config.qk_norm
    with torch.no_grad():
        torch.testing.assert_close(back.model(TOKENS).logits, ours(TOKENS).logits, atol=0, rtol=0)


def test_hf_export_in_bf16_keeps_the_mapping(make_model, tokenizer, tmp_path):
    ours = make_model()
    export_hf(ours, tokenizer, tmp_path / "hf", dtype=torch.bfloat16)
    assert json.loads((tmp_path / "hf" / "config.json").read_text())["torch_dtype"] == "bfloat16"
    assert load_file(tmp_path / "hf" / "model.safetensors")["model.norm.weight"].dtype == torch.bfloat16


def test_moe_is_refused_clearly_and_writes_nothing(make_model, tokenizer, tmp_path):
    with pytest.raises(ExportError, match="mixture-of-experts.*format=minimind"):
        export_hf(make_model(use_moe=True), tokenizer, tmp_path / "hf")
    assert not (tmp_path / "hf").exists() and list(tmp_path.iterdir()) == []


def test_writes_are_atomic_and_never_clobber(make_model, tokenizer, tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ToolError, match="overwrite=true"):
        export_minimind(make_model(), tokenizer, out)
    # A failure half-way leaves the old directory as it was and no temporary directory behind.
    import minimind.export as export

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(export, "save_tokenizer", broken)
    with pytest.raises(OSError, match="disk full"):
        export_minimind(make_model(), tokenizer, out, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"] and (out / "keep.txt").read_text() == "mine"
    monkeypatch.undo()
    export_minimind(make_model(), tokenizer, out, overwrite=True)
    assert not (out / "keep.txt").exists() and (out / "pretrain_64.pth").is_file()


@pytest.mark.parametrize("layout", [{}, {"qk_norm": True}, {"use_moe": True, "n_shared_experts": 1}])
def test_minimind_export_is_fp16_and_loads_back_strictly(make_model, tokenizer, tmp_path, layout):
    ours = make_model(**layout)
    result = export_minimind(ours, tokenizer, tmp_path / "pth", stage="full_sft")
    name = "full_sft_64_moe.pth" if layout.get("use_moe") else "full_sft_64.pth"
    assert result["weights"].name == name
    state = torch.load(result["weights"], weights_only=True)
    assert set(state) == set(ours.state_dict()) and all(v.dtype == torch.float16 for v in state.values())
    back = load_checkpoint(tmp_path / "pth")  # shape from minimind_config.json, weights strict
    rounded = type(ours)(ours.config).eval()
    rounded.load_state_dict({k: v.half().float() for k, v in ours.state_dict().items()})
    with torch.no_grad():
        torch.testing.assert_close(back.model(TOKENS).logits, rounded(TOKENS).logits, atol=1e-6, rtol=0)
    assert AutoTokenizer.from_pretrained(tmp_path / "pth").chat_template == tokenizer.chat_template


@pytest.mark.slow
def test_command_exports_a_trained_run(trained_run, tmp_path):
    run_dir, _ = trained_run
    proc = run_tool("export", f"ckpt={run_dir}", "format=hf", f"out={tmp_path / 'hf'}")
    assert "wrote LlamaForCausalLM" in proc.stdout and "transformers reloads it" in proc.stdout
    theirs = AutoModelForCausalLM.from_pretrained(tmp_path / "hf").eval()
    same_logits(theirs, load_checkpoint(run_dir).model)


def test_an_unfaithful_export_is_caught_by_the_logit_check(make_model, tokenizer, tmp_path, monkeypatch):
    import minimind.export as export

    original = export.hf_config

    def wrong_theta(config, dtype):
        data = original(config, dtype)
        data["rope_theta"] = data["rope_parameters"]["rope_theta"] = 10000.0
        return data

    monkeypatch.setattr(export, "hf_config", wrong_theta)
    with pytest.raises(ExportError, match="differ from MiniMind's .*not written"):
        export_hf(make_model(), tokenizer, tmp_path / "hf")
    assert list(tmp_path.iterdir()) == []


def test_yarn_rope_scaling_exports_faithfully(make_model, tokenizer, tmp_path):
    ours = make_model(rope_scaling={"type": "yarn", "factor": 4, "original_max_position_embeddings": 64})
    assert export_hf(ours, tokenizer, tmp_path / "hf")["max_logit_diff"] <= 1e-4
    assert load_checkpoint(tmp_path / "hf").config.rope_scaling["factor"] == 4
