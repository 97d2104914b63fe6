"""Compose the real `conf/` with Hydra's compose API, shrunk for CPU tests."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, open_dict

from minimind.paths import CONF_DIR, PROJECT_ROOT


def compose_train(overrides: list[str] | None = None, run_dir: Path | None = None) -> DictConfig:
    """conf/train.yaml with `overrides`, its run dir set to `run_dir` (no Hydra run is active)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=list(overrides or []), return_hydra_config=False)
    with open_dict(cfg):
        cfg.paths.output_dir = str(run_dir or "/nonexistent-run-dir")
        cfg.paths.root_dir = str(PROJECT_ROOT)
        cfg.paths.log_dir = str((run_dir or Path("/nonexistent-run-dir")) / "logs")
    return cfg


@pytest.fixture
def compose_cfg():
    return compose_train


@pytest.fixture
def tiny_run(tiny_corpus, tiny_tokenizer_dir):
    """Overrides for a real training run that takes seconds on a CPU: a 2-layer model of width 64
    on the tiny corpus and tokenizer, fp32, CSV logging, validation every 10 steps."""
    return ["model=tiny", "model.hidden_size=64", "model.num_hidden_layers=2", "model.num_attention_heads=4",
            "model.num_key_value_heads=2", "model.intermediate_size=128", "model.vocab_size=400",
            "trainer=cpu", "precision=fp32", "logger=csv", f"data.path={tiny_corpus}",
            f"data.tokenizer={tiny_tokenizer_dir}", "data.seq_len=32", "data.batch_size=8", "data.num_workers=0",
            "data.val_fraction=0.1", "tokens=8448", "trainer.val_check_interval=10", "trainer.limit_val_batches=4",
            "trainer.enable_progress_bar=false", "callbacks.samples.max_new_tokens=8", "optimizer.lr=3e-3"]
