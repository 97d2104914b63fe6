"""One loader for the three checkpoint kinds; never unpickles objects; never loads partially."""

from __future__ import annotations

import json
import os

import pytest
import torch

from minimind.checkpoints import CheckpointError, load_checkpoint, resolve_tokenizer, save_upstream_pth
from minimind.model import MiniMindConfig, MiniMindForCausalLM
from tools_helpers import VOCAB, run_tool, tiny_config


def logits(model, length: int = 12) -> torch.Tensor:
    tokens = torch.arange(3, 3 + length)[None] % model.config.vocab_size
    with torch.no_grad():
        return model(tokens).logits


def fp16_rounded(model: MiniMindForCausalLM) -> MiniMindForCausalLM:
    copy = MiniMindForCausalLM(model.config).eval()
    copy.load_state_dict({k: v.half().float() for k, v in model.state_dict().items()})
    return copy


def test_lightning_checkpoint_and_run_dir_load_with_their_own_config(trained_run):
    run_dir, _ = trained_run
    by_dir = load_checkpoint(run_dir)
    by_file = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    assert by_dir.kind == by_file.kind == "lightning" and by_dir.run_dir == run_dir
    assert by_dir.config.hidden_size == 64 and by_dir.config.vocab_size == VOCAB
    torch.testing.assert_close(logits(by_dir.model), logits(by_file.model), rtol=0, atol=0)
    # The run's final upstream .pth (fp16) holds the same weights, rounded; its shape comes from the run's config.yaml.
    pth = load_checkpoint(run_dir / "pretrain_64.pth")
    assert pth.kind == "pth" and pth.config_source.endswith("config.yaml")
    torch.testing.assert_close(logits(pth.model), logits(fp16_rounded(by_dir.model)), rtol=0, atol=1e-5)


@pytest.mark.parametrize("layout", [{}, {"qk_norm": True, "num_key_value_heads": 1, "rms_norm_eps": 1e-6},
                                    {"use_moe": True, "n_shared_experts": 1}])
@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
def test_upstream_pth_loads_strictly_with_the_given_config(make_model, tmp_path, layout, dtype):
    """MiniMind2, minimind-3 (q/k norm) and MoE layouts; fp16 as upstream releases them, or fp32."""
    source = make_model(**layout)
    path = save_upstream_pth(source, tmp_path / "full_sft_64.pth", dtype=dtype)
    loaded = load_checkpoint(path, model_config=tiny_config(**layout).to_dict())
    assert loaded.kind == "pth" and loaded.config.qk_norm == layout.get("qk_norm", False)
    expected = fp16_rounded(source) if dtype == torch.float16 else source
    torch.testing.assert_close(logits(loaded.model), logits(expected), rtol=0, atol=1e-6)
    assert next(loaded.model.parameters()).dtype == torch.float32


def test_preset_plus_field_overrides_describe_a_pth(tmp_path):
    config = MiniMindConfig.from_preset("tiny", num_hidden_layers=1, vocab_size=300)
    torch.manual_seed(0)
    path = save_upstream_pth(MiniMindForCausalLM(config), tmp_path / "pretrain_128.pth")
    loaded = load_checkpoint(path, model_config=MiniMindConfig.from_preset("tiny", num_hidden_layers=1,
                                                                           vocab_size=300))
    assert loaded.config.num_hidden_layers == 1


def test_mismatched_checkpoint_lists_keys_shapes_and_the_fix(make_model, tmp_path):
    path = save_upstream_pth(make_model(), tmp_path / "pretrain_64.pth")
    wrong = tiny_config(hidden_size=96, num_hidden_layers=3, intermediate_size=256)
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(path, model_config=wrong)
    message = str(error.value)
    assert "missing in the checkpoint (" in message and "model.layers.2.self_attn.q_proj.weight" in message
    assert "model.embed_tokens.weight: checkpoint (400, 64) vs model (400, 96)" in message
    assert "model.layers.0-1.self_attn.q_proj.weight: checkpoint (64, 64) vs model (96, 96)" in message
    assert "model.hidden_size=64" in message and "model.num_hidden_layers=2" in message
    assert "model.intermediate_size=128" in message


@pytest.mark.slow
def test_command_reports_a_mismatch_without_a_traceback(make_model, tmp_path):
    path = save_upstream_pth(make_model(), tmp_path / "pretrain_64.pth")
    proc = run_tool("generate", f"ckpt={path}", "model=small", "prompt=hi", check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "error: checkpoint" in proc.stderr and "shape mismatches (" in proc.stderr
    assert "model.hidden_size=64" in proc.stderr


def test_mismatch_names_the_matching_preset(tmp_path):
    torch.manual_seed(0)
    tiny = MiniMindForCausalLM(MiniMindConfig.from_preset("tiny"))
    path = save_upstream_pth(tiny, tmp_path / "pretrain_128.pth")
    with pytest.raises(CheckpointError, match="choose model=tiny"):
        load_checkpoint(path, model_config=MiniMindConfig.from_preset("small"))
    with pytest.raises(CheckpointError, match="unexpected in the checkpoint"):
        load_checkpoint(path, model_config=MiniMindConfig.from_preset("tiny", num_hidden_layers=2))


def test_untied_weights_are_not_silently_tied(make_model, tmp_path):
    path = save_upstream_pth(make_model(tie_word_embeddings=False), tmp_path / "pretrain_64.pth")
    with pytest.raises(CheckpointError, match="(?s)lm_head.weight differs.*model.tie_word_embeddings=false"):
        load_checkpoint(path, model_config=tiny_config())
    assert not load_checkpoint(path, model_config=tiny_config(tie_word_embeddings=False)).config.tie_word_embeddings


class Payload:
    """Unpickling this runs code: it would create the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


@pytest.mark.parametrize("suffix", [".pth", ".ckpt"])
def test_tampered_pickle_is_refused_and_never_runs(make_model, tmp_path, suffix):
    marker = tmp_path / "code-ran"
    state = {**make_model().state_dict(), "extra": Payload(marker)}
    data = state if suffix == ".pth" else {"state_dict": state, "hyper_parameters": {"model_config": {}}}
    torch.save(data, tmp_path / f"evil{suffix}")
    with pytest.raises(CheckpointError, match="refusing to load .*arbitrary code.*GLOBAL"):
        load_checkpoint(tmp_path / f"evil{suffix}", model_config=tiny_config())
    assert not marker.exists()


def test_unknown_paths_and_kinds_say_what_is_expected(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pth")
    (tmp_path / "weights.txt").write_text("x")
    with pytest.raises(CheckpointError, match="expected a .ckpt, a .pth"):
        load_checkpoint(tmp_path / "weights.txt")
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    (tmp_path / "hf" / "model.safetensors").write_bytes(b"")
    with pytest.raises(CheckpointError, match="model_type='gpt2' is not a MiniMind layout"):
        load_checkpoint(tmp_path / "hf")


def test_tokenizer_comes_from_the_run(trained_run, tokenizer):
    run_dir, _ = trained_run
    found = resolve_tokenizer(load_checkpoint(run_dir))  # the run's data.tokenizer
    assert found.backend_tokenizer.to_str() == tokenizer.backend_tokenizer.to_str()
    assert found.chat_template
