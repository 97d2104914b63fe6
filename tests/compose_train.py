"""Compose the real packaged config (`minimind/conf/train.yaml`) with Hydra's compose API, for tests
that call `train(cfg)`; and where the checkout is, for tests that run its `train.py`."""

from pathlib import Path

from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, open_dict

from minimind.paths import CONF_PACKAGE
from minimind.sweeps.resolvers import register as register_resolvers

REPO_ROOT = Path(__file__).resolve().parents[1]
VOCAB = 400  # the size of tests/conftest.py's tiny tokenizer
# A real run of seconds: a 2-layer model of width 64, 12 steps, validation at 6 and 12 (add data.path/tokenizer).
TRAIN_OVERRIDES = [
    "model=tiny", "model.hidden_size=64", "model.num_hidden_layers=2", "model.num_attention_heads=4",
    "model.num_key_value_heads=2", "model.intermediate_size=128", f"model.vocab_size={VOCAB}",
    "model.max_position_embeddings=256", "trainer=cpu", "precision=fp32", "logger=csv", "tokens=null",
    "trainer.max_steps=12", "trainer.val_check_interval=6", "trainer.limit_val_batches=3",
    "trainer.enable_progress_bar=false", "trainer.log_every_n_steps=1", "callbacks.samples=null",
    "data.seq_len=32", "data.batch_size=4", "data.num_workers=0",
    "optimizer.lr=3e-3", "scheduler=constant",
]


def compose_train(overrides: list[str] | None = None, run_dir: Path | None = None,
                  config_name: str = "train") -> DictConfig:
    """train.yaml with `overrides`, its run dir set to `run_dir` (no Hydra run is active)."""
    GlobalHydra.instance().clear()
    register_resolvers()  # as train.py does: the config's ${minimind.*} interpolations
    with initialize_config_module(config_module=CONF_PACKAGE, version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=list(overrides or []), return_hydra_config=False)
    if config_name == "train":
        with open_dict(cfg):
            cfg.paths.output_dir = str(run_dir or "/nonexistent-run-dir")
            cfg.paths.root_dir = str(REPO_ROOT)
            cfg.paths.log_dir = str((run_dir or Path("/nonexistent-run-dir")) / "logs")
    return cfg
