"""Refuse impossible settings before any data is read or any model is built.

Every problem found is reported at once, each with what to change, so a wrong sweep
combination fails in a second instead of after tokenising a corpus. What passes is
returned as a `TrainingPlan`: the model config, the run's length, the checkpoint to resume.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from minimind.checkpoints.lora import LORA_HPARAMS
from minimind.checkpoints.mismatch import mismatch_report
from minimind.cli import expected_error
from minimind.data.datamodule import settings_problems
from minimind.errors import ConfigurationError, MiniMindError
from minimind.hardware import gpu_has_bf16
from minimind.model import MiniMindConfig
from minimind.precision import parse_precision
from minimind.runs import LAST_CHECKPOINT, overridden
from minimind.training.budget import RunBudget, plan_budget, world_size
from minimind.training.init import InitWeights, resolve_init, with_typed_model_settings
from minimind.training.lora import LoRASetup, read_base, resume_problems, stage_lora
from minimind.training.objectives import Objective


@dataclass(frozen=True)
class TrainingPlan:
    model_config: MiniMindConfig
    budget: RunBudget
    ckpt_path: str | None  # the Lightning checkpoint to resume from (`last` resolved)
    init: InitWeights | None  # the weights to start from (init_from=), unless resuming (LoRA: the base, always)
    objective: Objective
    lora: LoRASetup | None = None  # stage=lora: the adapters to train on the frozen base


def check_training_config(cfg: DictConfig, overrides: list[str] = ()) -> TrainingPlan:
    """Validate `cfg` (with the overrides the user typed, which decide precedence); return the plan."""
    problems: list[str] = []
    required = cfg.get("init_from_required")  # true, or what to give (e.g. "the run dir of experiment=...")
    if required and not cfg.get("init_from") and cfg.get("ckpt_path") is None:
        follows = required if isinstance(required, str) else \
            "a pretraining run dir, e.g. the run dir `python train.py experiment=quickstart` printed"
        problems.append(f"init_from= is required: this configuration trains further from trained weights; give "
                        f"init_from=<{follows}>")
    if cfg.stage.get("lora") is not None:
        model_config, init, ckpt_path, lora = _lora_source(cfg, list(overrides), problems)
    else:
        model_config, init, ckpt_path = _model_source(cfg, list(overrides), problems)
        lora = None
    objective = _collect(problems, lambda: instantiate(cfg.stage.objective))
    problems += _hardware_problems(cfg.trainer)
    world = _collect(problems, lambda: world_size(cfg.trainer))
    problems += settings_problems(**{"path": None, **OmegaConf.to_container(cfg.data, resolve=True)})
    budget = None
    if not problems:
        budget = _collect(problems, lambda: plan_budget(cfg, list(overrides), world))
    if model_config is not None and isinstance(cfg.data.seq_len, int) \
            and cfg.data.seq_len > model_config.max_position_embeddings:
        problems.append(f"data.seq_len={cfg.data.seq_len} exceeds model.max_position_embeddings="
                        f"{model_config.max_position_embeddings}: shorten data.seq_len or raise the limit")
    problems += _optimizer_problems(cfg)
    problems += _trainer_problems(cfg.trainer)
    problems += _distributed_problems(cfg)
    if budget is not None:
        problems += _schedule_problems(cfg, budget)
        problems += _streaming_problems(cfg, budget)
        if objective is not None and model_config is not None:
            problems += objective.problems(model_config=model_config, seq_len=cfg.data.seq_len,
                                           length_from=budget.length_from)
    if problems:
        raise ConfigurationError("cannot start training:\n  - " + "\n  - ".join(problems))
    return TrainingPlan(model_config, budget, ckpt_path, init, objective, lora)


def _model_source(cfg: DictConfig, overrides: list[str], problems: list[str]):
    """(model config, weights to start from, checkpoint to resume): a resumed run keeps the model in its
    checkpoint, a run from `init_from=` takes the source's; either with what the user typed on top (and
    refused if that no longer fits the weights); otherwise the composed `model`."""
    if cfg.get("ckpt_path") is not None:
        if cfg.get("init_from") and overridden(overrides, "ckpt_path") and overridden(overrides, "init_from"):
            problems.append(f"ckpt_path={cfg.ckpt_path} and init_from={cfg.init_from} were both given: ckpt_path= "
                            "resumes a run exactly (its weights included), init_from= starts a new run from weights; "
                            "to resume, drop init_from=")
        resumed = _resume_checkpoint(cfg, problems)
        if resumed is None:
            return None, None, None
        path, fields, state, recorded_lora = resumed
        if recorded_lora:  # its checkpoints hold adapters, not a model
            problems.append(f"ckpt_path={cfg.ckpt_path} is a LoRA run's checkpoint (adapters only): resume it "
                            "with stage=lora")
            return None, None, None
        fields, _ = with_typed_model_settings(fields, cfg, overrides, "")
        config = _collect(problems, lambda: MiniMindConfig.from_dict(fields))
        report = config and mismatch_report(state, config, f"ckpt_path={cfg.ckpt_path}")
        if report:
            problems.append(report + "\n    (a resumed run keeps the model it was started with: drop the model "
                            "overrides that differ, or start a new run)")
        return config, None, path
    if cfg.get("init_from"):
        config, init = _collect(problems, lambda: resolve_init(cfg, overrides)) or (None, None)
        report = init and config and mismatch_report(init.state, config, f"init_from={cfg.init_from}")
        if report:
            problems.append(report + "\n    (the model's shape comes from init_from=: drop the model overrides "
                            "that change it)")
        return config, init, None
    return _collect(problems, lambda: MiniMindConfig.from_dict(OmegaConf.to_container(cfg.model, resolve=True))), \
        None, None


def _lora_source(cfg: DictConfig, overrides: list[str], problems: list[str]):
    """stage=lora: (model config, the frozen base, checkpoint to resume, the adapters' setup). A new run's
    base is init_from=; a resumed run reads again the base its checkpoint records (or init_from=, the same
    weights elsewhere), since its checkpoints hold only the adapters."""
    lora_config = _collect(problems, lambda: stage_lora(cfg))
    if cfg.get("ckpt_path") is None:
        if not cfg.get("init_from"):
            problems.append("stage=lora trains adapters on trained weights: give the base as init_from= (a run dir, "
                            ".ckpt, upstream .pth with model=PRESET, or Hugging Face dir)")
            return None, None, None, None
        config, init, _ = _model_source(cfg, overrides, problems)
        path = recorded = adapters = None
    else:
        resumed = _resume_checkpoint(cfg, problems)
        if resumed is None:
            return None, None, None, None
        path, fields, adapters, recorded = resumed
        if not recorded:
            problems.append(f"ckpt_path={cfg.ckpt_path} is not a LoRA run's checkpoint: to train adapters on its "
                            f"weights, start a new run with init_from={path} (without ckpt_path)")
            return None, None, None, None
        fields, _ = with_typed_model_settings(fields, cfg, overrides, "")
        config = _collect(problems, lambda: MiniMindConfig.from_dict(fields))
        init = _collect(problems, lambda: read_base(recorded, fields, f"ckpt_path={cfg.ckpt_path}", cfg.get("init_from")))
        report = init and config and mismatch_report(init.state, config, f"the base {init.path}")
        if report:
            problems.append(report + "\n    (a resumed run keeps the model it was started with: drop the model "
                            "overrides that differ)")
            return None, None, None, None
    if config is None or init is None or lora_config is None:
        return config, init, path, None
    setup = _collect(problems, lambda: LoRASetup.of(lora_config, init, config))
    if setup is not None and path is not None:
        problems += resume_problems(recorded, adapters, setup, config, f"ckpt_path={cfg.ckpt_path}")
    return config, init, path, setup


def last_checkpoint(cfg: DictConfig) -> Path:
    return Path(cfg.paths.output_dir) / LAST_CHECKPOINT


def _collect(problems: list[str], check):
    """Run one check; an expected error becomes a listed problem instead of stopping the others."""
    try:
        return check()
    except Exception as error:
        expected = expected_error(error)  # also behind Hydra's InstantiationException
        if expected is None:
            raise
        problems.append(str(expected))
        return None


def _hardware_problems(trainer: DictConfig) -> list[str]:
    problems = []
    accelerator = str(trainer.get("accelerator", "auto"))
    try:
        precision = parse_precision(trainer.get("precision", "32-true"))
    except MiniMindError as error:
        return [str(error)]
    strategy = trainer.get("strategy", "auto")
    strategy_name = str(strategy.get("_target_", "") if isinstance(strategy, DictConfig) else strategy).lower()
    has_cuda = torch.cuda.is_available()
    on_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and has_cuda)
    if accelerator in ("gpu", "cuda") and not has_cuda:
        problems.append(f"trainer.accelerator={accelerator} but no CUDA GPU is visible: use trainer=cpu "
                        "(or trainer.accelerator=cpu)")
    if precision.is_fp16 and not on_gpu:
        problems.append(f"precision {precision.name} (fp16) needs a CUDA GPU; on CPU use precision=bf16 or "
                        "precision=fp32")
    if precision.is_bf16 and on_gpu and has_cuda and not gpu_has_bf16():
        problems.append(f"precision {precision.name} but {torch.cuda.get_device_name()} (compute capability "
                        f"{'.'.join(map(str, torch.cuda.get_device_capability()))}) has no native bf16: "
                        "use precision=fp16 (or fp32)")
    if "fsdp" in strategy_name and not has_cuda:
        problems.append("FSDP shards the model over GPUs and needs CUDA: use trainer=cpu (or trainer=ddp_cpu "
                        "to test multi-process code on CPU)")
    devices = trainer.get("devices", "auto")
    if on_gpu and has_cuda and isinstance(devices, int) and devices > torch.cuda.device_count():
        problems.append(f"trainer.devices={devices} but only {torch.cuda.device_count()} GPU(s) are visible")
    return problems


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _optimizer_problems(cfg: DictConfig) -> list[str]:
    problems = []
    opt = cfg.optimizer
    lr = _number(opt.get("lr"))
    if lr is None or lr <= 0:
        problems.append(f"optimizer.lr={opt.get('lr')} must be a positive number (e.g. optimizer.lr=5e-4)")
    wd = opt.get("weight_decay", 0.0)
    if _number(wd) is None or wd < 0:
        problems.append(f"optimizer.weight_decay={wd} must be >= 0 (0 turns weight decay off)")
    betas = opt.get("betas")
    if betas is not None and (len(betas) != 2 or not all(_number(b) is not None and 0 <= b < 1 for b in betas)):
        problems.append(f"optimizer.betas={list(betas)} must be two numbers in [0, 1), e.g. [0.9,0.95]")
    eps = opt.get("eps")
    if eps is not None and (_number(eps) is None or eps <= 0):
        problems.append(f"optimizer.eps={eps} must be a positive number (e.g. 1e-8)")
    return problems


def _trainer_problems(trainer: DictConfig) -> list[str]:
    problems = []
    clip = trainer.get("gradient_clip_val")
    if clip is not None and (_number(clip) is None or clip < 0):
        problems.append(f"trainer.gradient_clip_val={clip} must be >= 0 (or null: no clipping)")
    accumulate = trainer.get("accumulate_grad_batches", 1)
    if not isinstance(accumulate, int) or accumulate < 1:
        problems.append(f"trainer.accumulate_grad_batches={accumulate} must be an integer >= 1")
    interval = trainer.get("val_check_interval")
    if interval is not None and (_number(interval) is None or interval <= 0):
        problems.append(f"trainer.val_check_interval={interval} must be > 0 (steps, or a fraction of an epoch)")
    limit = trainer.get("limit_val_batches")
    if limit is not None and (_number(limit) is None or limit < 0):
        problems.append(f"trainer.limit_val_batches={limit} must be >= 0 (0 turns validation off)")
    every = trainer.get("log_every_n_steps")
    if every is not None and (not isinstance(every, int) or every < 1):
        problems.append(f"trainer.log_every_n_steps={every} must be an integer >= 1")
    return problems


def _distributed_problems(cfg: DictConfig) -> list[str]:
    problems = []
    strategy = cfg.trainer.get("strategy", "auto")
    is_fsdp = "fsdp" in str(strategy.get("_target_", "") if isinstance(strategy, DictConfig) else strategy).lower()
    if is_fsdp and cfg.get("activation_checkpointing") and not (
            isinstance(strategy, DictConfig) and strategy.get("activation_checkpointing_policy") is not None):
        problems.append("activation_checkpointing=true under FSDP is done by the strategy, on each block inside its "
                        "shard unit, and this trainer.strategy has no activation_checkpointing_policy: use "
                        "trainer=fsdp (it sets one from activation_checkpointing)")
    if is_fsdp and cfg.stage.get("lora") is not None:
        problems.append("stage=lora does not run under FSDP (its frozen base and trained adapters would share flat "
                        "shards): the adapters are small, so use trainer=ddp, or one GPU")
    problems += _slurm_problems()
    return problems


def _slurm_problems() -> list[str]:
    """What Lightning's SLURM environment would refuse with a traceback, said with the fix."""
    from lightning.fabric.plugins.environments import SLURMEnvironment

    from minimind.sweeps.resolvers import tasks_per_node_counts

    if not SLURMEnvironment.detect():
        return []
    env = os.environ
    tasks = int(env.get("SLURM_NTASKS") or 1)
    counts = tasks_per_node_counts(env.get("SLURM_TASKS_PER_NODE", ""))
    if tasks > 1 and "SLURM_NTASKS_PER_NODE" not in env:
        hint = f"--ntasks-per-node={counts[0]}" if counts and len(set(counts)) == 1 else "--ntasks-per-node=<GPUs per node>"
        return [f"SLURM started {tasks} tasks without --ntasks-per-node (tasks per node: "
                f"{env.get('SLURM_TASKS_PER_NODE', '?')}), which Lightning needs to place one rank per GPU: submit "
                f"with {hint} and --nodes=N instead of --ntasks"]
    return []


def _schedule_problems(cfg: DictConfig, budget: RunBudget) -> list[str]:
    problems = []
    scheduler = cfg.get("scheduler") or {}
    warmup = scheduler.get("warmup_steps")
    if warmup is not None:
        if _number(warmup) is None or warmup < 0:
            problems.append(f"scheduler.warmup_steps={warmup} must be >= 0 (a number of steps, or below 1 a "
                            "fraction of the run)")
        elif isinstance(warmup, float) and warmup < 1:
            pass  # a fraction of the run, always shorter than it
        elif budget.max_steps > 0 and warmup >= budget.max_steps:
            problems.append(f"scheduler.warmup_steps={warmup} is not shorter than the run ({budget.max_steps} steps):"
                            " the learning rate would never leave the warm-up; lower it (e.g. "
                            f"scheduler.warmup_steps={max(1, budget.max_steps // 50)}) or lengthen the run")
    ratio = scheduler.get("min_lr_ratio")
    if ratio is not None and (_number(ratio) is None or not 0 <= ratio <= 1):
        problems.append(f"scheduler.min_lr_ratio={ratio} must be in [0, 1] (the final lr as a share of the peak)")
    return problems


def _streaming_problems(cfg: DictConfig, budget: RunBudget) -> list[str]:
    streamed = cfg.data.get("cache") is False or (cfg.data.get("cache") is None and str(cfg.data.path).startswith("hf:"))
    if streamed and budget.length_from == "trainer.max_epochs":
        return [f"data.path={cfg.data.path} is streamed (no token cache), so it has no epochs to count: give the "
                "length as tokens= or trainer.max_steps= instead of trainer.max_epochs="]
    return []


def _resume_checkpoint(cfg: DictConfig, problems: list[str]):
    """(path, model config fields, model state, its LoRA record or None) of `ckpt_path` (`last` resolved): it
    must exist and be a training checkpoint of MiniMind; None after listing what is wrong."""
    from minimind.checkpoints.files import lightning_state, safe_torch_load

    value = cfg.ckpt_path
    path = last_checkpoint(cfg) if value == "last" else Path(str(value)).expanduser()
    if value == "last" and not path.is_file():
        problems.append(f"ckpt_path=last but there is no {path}: point hydra.run.dir= at the run dir to resume, "
                        "or drop ckpt_path to start a new run")
        return None
    if not path.is_file():
        problems.append(f"ckpt_path={value} does not exist: give a Lightning .ckpt of this run, or `last` "
                        "(with hydra.run.dir=<run dir>)")
        return None
    try:
        checkpoint = safe_torch_load(path, mmap=True)
        if isinstance(checkpoint, dict) and "state_dict" not in checkpoint and checkpoint and \
                all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
            raise ConfigurationError(
                f"ckpt_path={value} holds bare model weights (an upstream-style .pth), not a training checkpoint: "
                "ckpt_path= resumes a run exactly (optimizer, schedule, data position); weights alone cannot do that; "
                "to start a new run from them use init_from=")
        fields, state = lightning_state(checkpoint, path)
        if "global_step" not in checkpoint or "optimizer_states" not in checkpoint:
            raise ConfigurationError(f"ckpt_path={value} has no training state (global_step, optimizer_states): "
                                     "it cannot be resumed; give the last.ckpt of a training run")
    except MiniMindError as error:
        problems.append(f"ckpt_path: {error}")
        return None
    return str(path), fields, state, checkpoint["hyper_parameters"].get(LORA_HPARAMS)
