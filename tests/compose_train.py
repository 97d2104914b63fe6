"""Compose the real `conf/train.yaml` with Hydra's compose API, for tests that call `train(cfg)`."""

from pathlib import Path

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
