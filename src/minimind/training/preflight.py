"""Refuse impossible settings before any data is read or any model is built.

Every problem found is reported at once, each with what to change, so a wrong sweep
combination fails in a second instead of after tokenising a corpus.
"""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from minimind.model import ConfigError, MiniMindConfig


class ConfigurationError(ValueError):
    """A training configuration that cannot run; the message says what to change."""


def check_training_config(cfg: DictConfig) -> MiniMindConfig:
    """Validate `cfg`; return the model config it describes."""
    problems: list[str] = []
    model_config = None
    try:
        model_config = MiniMindConfig.from_dict(OmegaConf.to_container(cfg.model, resolve=True))
    except ConfigError as error:
        problems.append(str(error))
    problems += _hardware_problems(cfg.trainer)
    problems += _data_problems(cfg, model_config)
    if cfg.get("ckpt_path") == "last" and not last_checkpoint(cfg).is_file():
        problems.append(f"ckpt_path=last but there is no {last_checkpoint(cfg)}: point hydra.run.dir= at the "
                        "run dir to resume, or drop ckpt_path to start a new run")
    elif cfg.get("ckpt_path") not in (None, "last") and not Path(cfg.ckpt_path).is_file():
        problems.append(f"ckpt_path={cfg.ckpt_path} does not exist: give a .ckpt file or `last`")
    if problems:
        raise ConfigurationError("cannot start training:\n  - " + "\n  - ".join(problems))
    return model_config


def last_checkpoint(cfg: DictConfig) -> Path:
    return Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"


def _hardware_problems(trainer: DictConfig) -> list[str]:
    problems = []
    accelerator = str(trainer.get("accelerator", "auto"))
    precision = str(trainer.get("precision", "32-true"))
    strategy = trainer.get("strategy", "auto")
    strategy_name = str(strategy.get("_target_", "") if isinstance(strategy, DictConfig) else strategy).lower()
    has_cuda = torch.cuda.is_available()
    on_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and has_cuda)
    if accelerator in ("gpu", "cuda") and not has_cuda:
        problems.append(f"trainer.accelerator={accelerator} but no CUDA GPU is visible: use trainer=cpu "
                        "(or trainer.accelerator=cpu)")
    if precision.startswith("16") and not on_gpu:
        problems.append(f"precision {precision} (fp16) needs a CUDA GPU; on CPU use precision=bf16 or precision=fp32")
    if "bf16" in precision and on_gpu and has_cuda and not torch.cuda.is_bf16_supported():
        problems.append(f"precision {precision} but {torch.cuda.get_device_name()} has no bf16: use precision=fp16")
    if "fsdp" in strategy_name and not has_cuda:
        problems.append("FSDP shards the model over GPUs and needs CUDA: use trainer=cpu (or trainer=ddp_cpu "
                        "to test multi-process code on CPU)")
    devices = trainer.get("devices", "auto")
    if on_gpu and has_cuda and isinstance(devices, int) and devices > torch.cuda.device_count():
        problems.append(f"trainer.devices={devices} but only {torch.cuda.device_count()} GPU(s) are visible")
    return problems


def _data_problems(cfg: DictConfig, model_config: MiniMindConfig | None) -> list[str]:
    problems = []
    data = cfg.data
    if data.batch_size < 1:
        problems.append(f"data.batch_size={data.batch_size} must be >= 1")
    if data.seq_len < 2:
        problems.append(f"data.seq_len={data.seq_len} must be >= 2 (one input and one target token)")
    if model_config is not None and data.seq_len > model_config.max_position_embeddings:
        problems.append(f"data.seq_len={data.seq_len} exceeds model.max_position_embeddings="
                        f"{model_config.max_position_embeddings}: shorten data.seq_len or raise the limit")
    tokens = cfg.get("tokens")
    accumulate = cfg.trainer.get("accumulate_grad_batches", 1)
    if tokens is not None and tokens < data.batch_size * data.seq_len * accumulate:
        problems.append(f"tokens={tokens} is less than one optimizer step "
                        f"({data.batch_size} x {data.seq_len} x {accumulate} tokens): raise tokens or shrink the batch")
    return problems
