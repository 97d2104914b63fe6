"""Impossible settings are refused before any data is read, with what to change."""

import pytest
import torch

from minimind.errors import ConfigurationError
from minimind.training.preflight import check_training_config
from minimind.training.run import train

needs_no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusals of a machine without CUDA")


@needs_no_gpu
@pytest.mark.parametrize("overrides, hint", [
    (["precision=fp16", "trainer=cpu"], "needs a CUDA GPU; on CPU use precision=bf16 or precision=fp32"),
    (["trainer=fsdp"], "FSDP shards the model over GPUs and needs CUDA"),
    (["trainer=gpu"], "no CUDA GPU is visible: use trainer=cpu"),
])
def test_hardware_contradictions(compose_cfg, overrides, hint):
    with pytest.raises(ConfigurationError, match="cannot start training") as error:
        check_training_config(compose_cfg(overrides))
    assert hint in str(error.value)


@pytest.mark.parametrize("overrides, hint", [
    (["model=tiny", "data.seq_len=4096"], "data.seq_len=4096 exceeds model.max_position_embeddings=2048"),
    (["tokens=100", "data.batch_size=4", "data.seq_len=64"], "tokens=100 is less than one optimizer step"),
    (["model.num_key_value_heads=3"], "num_key_value_heads=3"),
    (["ckpt_path=last"], "ckpt_path=last but there is no"),
])
def test_config_contradictions(compose_cfg, overrides, hint, tmp_path):
    with pytest.raises(ConfigurationError) as error:
        check_training_config(compose_cfg(overrides, run_dir=tmp_path))
    assert hint in str(error.value)


def test_refused_before_data_is_read_and_summary_says_why(compose_cfg, tmp_path):
    missing = tmp_path / "no-such-corpus.jsonl"
    cfg = compose_cfg(["model=tiny", "trainer=cpu", "precision=fp32", f"data.path={missing}",
                       "model.num_attention_heads=3", "logger=csv"], run_dir=tmp_path / "run")
    with pytest.raises(ConfigurationError, match="num_attention_heads=3"):  # not a data error
        train(cfg)
    import json

    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "failed" and "num_attention_heads=3" in summary["error"]
