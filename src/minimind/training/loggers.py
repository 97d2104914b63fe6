"""Loggers from the `logger` config group, with wandb set up so it is never in the way.

- Offline automatically when no credentials are found (runs still write `wandb/` for a
  later `wandb sync`), so training never blocks on a login prompt or the network.
- The run id is stored in the run dir, so a resumed run continues the same wandb run.
- A CSV logger is always added: `metrics.csv` in the run dir is the record that the
  comparison report reads, whatever else is logged.
"""

from __future__ import annotations

import netrc
import os
import secrets
from pathlib import Path
from typing import Any

from hydra.utils import get_class, instantiate
from lightning.pytorch.loggers import CSVLogger, Logger, WandbLogger
from omegaconf import DictConfig

from minimind.training.csv_logger import ResumableCSVLogger

WANDB_ID_FILE = "wandb_run_id"


def wandb_has_credentials() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def wandb_run_id(run_dir: Path) -> str:
    """The wandb id of this run dir: read back on resume, created on the first start."""
    path = run_dir / WANDB_ID_FILE
    if path.is_file():
        return path.read_text().strip()
    run_id = secrets.token_hex(4)  # wandb ids are short lowercase strings
    path.write_text(run_id + "\n")
    return run_id


def build_loggers(logger_cfg: DictConfig | None, run_dir: Path, name: str, group: str | None,
                  tags: list[str]) -> list[Logger]:
    loggers: list[Logger] = []
    for entry in (logger_cfg or {}).values():
        if entry is None:
            continue
        extra: dict[str, Any] = {}
        if issubclass(get_class(entry._target_), WandbLogger):
            offline = os.environ.get("WANDB_MODE") in ("offline", "disabled") or not wandb_has_credentials()
            extra = dict(id=wandb_run_id(run_dir), resume="allow", name=name, group=group, tags=list(tags),
                         offline=offline)
        loggers.append(instantiate(entry, **extra))
    if not any(isinstance(logger, CSVLogger) for logger in loggers):
        loggers.append(ResumableCSVLogger(save_dir=run_dir, name="", version=""))
    return loggers
