"""`train(cfg)`: build everything from the composed Hydra config, fit, and record the outcome.

Kept apart from the Hydra entry point (`train.py`) so tests and sweeps call it directly.
Every run leaves in its run dir: the resolved config, `metrics.csv`, `summary.json`
(also when it fails), checkpoints, `samples.md`, and the final weights as an upstream `.pth`.
With `validate_at_start=true` the run also validates before its first step, so its curves and
`summary.json` (`val_at_start` beside `val_at_end`) show where it started.
"""

from __future__ import annotations

import logging
import math
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf, open_dict

from minimind.checkpoints import safe_torch_load, save_upstream_pth, upstream_pth_name
from minimind.checkpoints.lora import save_adapter
from minimind.checkpoints.mismatch import load_state_strict
from minimind.data.tokenizer import check_vocab_fits
from minimind.errors import ConfigurationError
from minimind.precision import parse_precision
from minimind.runs import LAST_CHECKPOINT, RUN_CONFIG, command_line_overrides, read_summary
from minimind.sweeps.resolvers import register as register_resolvers
from minimind.training.callbacks import RunStatsCallback
from minimind.training.csv_logger import METRICS_FILE, trim_metrics_after
from minimind.training.distributed import full_model
from minimind.training.loggers import build_loggers
from minimind.training.module import MiniMindModule
from minimind.training.preflight import TrainingPlan, check_training_config
from minimind.training.summary import RunSummary

log = logging.getLogger(__name__)
register_resolvers()  # the composed config refers to them (launcher group)
# Two warnings that say nothing to act on: our IterableDatasets' __len__ is exact per rank and
# worker by construction, and Lightning 2.6 calls a torch pytree API that torch 2.13 deprecates.
warnings.filterwarnings("ignore", message=r".*`IterableDataset` has `__len__` defined.*")
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated.*")


def train(cfg: DictConfig, overrides: list[str] | None = None) -> tuple[dict[str, float], dict[str, Any]]:
    """Train as `cfg` says; return (final metrics, the objects built).

    overrides: what the user typed (default: this Hydra job's command line); it decides
    precedence where the config alone cannot, e.g. `trainer.max_steps=` over a file's `tokens`."""
    run_dir = Path(cfg.paths.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    overrides = command_line_overrides() if overrides is None else list(overrides)
    started = (read_summary(run_dir) or {}).get("val_at_start") if cfg.get("ckpt_path") is not None else None
    summary = RunSummary(run_dir, overrides)
    summary.update(val_at_start=started)  # a resumed run keeps what its first start measured
    built: dict[str, Any] = {}
    try:
        plan = check_training_config(cfg, overrides)  # before any data is read
        budget = plan.budget
        with open_dict(cfg):  # the run's config records the model it really trains (from init_from=, a resumed
            cfg.model = {"_target_": cfg.model.get("_target_"), **plan.model_config.to_dict()}  # checkpoint, ...)
            if plan.lora is not None:  # and the frozen base a LoRA run's adapters belong to (also when resumed)
                cfg.init_from = plan.lora.base
        summary.update(length_from=budget.length_from, max_steps=budget.max_steps, tokens_per_step=budget.tokens_per_step,
                       world_size=budget.world_size, stage=cfg.stage.name, init_from=cfg.get("init_from"))
        _write_rank_zero(summary.write)
        _write_rank_zero(lambda: (run_dir / RUN_CONFIG).write_text(OmegaConf.to_yaml(cfg, resolve=True)))
        log.info("run length: %s", budget.describe())
        L.seed_everything(cfg.seed, workers=True)
        datamodule = instantiate(cfg.data)
        _check_data_fits_the_run(cfg, datamodule, plan.model_config, budget.world_size)
        module = build_module(cfg, plan, datamodule)
        loggers = build_loggers(cfg.get("logger"), run_dir, name=cfg.name or ",".join(overrides) or run_dir.name,
                                group=cfg.group, tags=cfg.tags)
        precision = cfg.trainer.get("precision")  # as Lightning names it (`bf16` -> `bf16-mixed`: no warning about it)
        trainer = instantiate(cfg.trainer, **budget.trainer_kwargs(), logger=loggers,
                              **({} if precision is None else {"precision": parse_precision(precision).name}),
                              callbacks=[instantiate(c) for c in cfg.callbacks.values() if c is not None])
        if trainer.world_size != budget.world_size:
            raise RuntimeError(f"the Trainer runs {trainer.world_size} processes but the budget was planned for "
                               f"{budget.world_size}: minimind.training.budget.world_size needs to learn this setup")
        built.update(datamodule=datamodule, module=module, trainer=trainer)
        for logger in trainer.loggers:
            logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
        trainable = sum(p.numel() for p in module.model.parameters() if p.requires_grad)
        summary.update(params=module.model.num_parameters(), trainable_params=trainable, precision=str(trainer.precision),
                       device=_device_name(trainer.strategy.root_device), cpu_threads=torch.get_num_threads())

        if plan.ckpt_path is not None:
            _prepare_resume(plan.ckpt_path, run_dir)
        elif cfg.get("validate_at_start") and trainer.limit_val_batches != 0:
            trainer.validate(module, datamodule=datamodule, verbose=False)
            summary.update(val_at_start=_val(_metrics(trainer)))
            _write_rank_zero(summary.write)  # kept by a resume, even of a run killed before its end
        # weights_only: a checkpoint holds tensors and plain data; never unpickle code from it.
        trainer.fit(module, datamodule=datamodule, ckpt_path=plan.ckpt_path, weights_only=True)
        if trainer.interrupted:
            raise KeyboardInterrupt("training was interrupted")
        metrics = _finish(trainer, module, datamodule, run_dir)

        _record_outcome(summary, trainer, module, metrics)
        summary.update(status="completed")
        _export_final_weights(cfg, trainer, module, run_dir)  # every rank: FSDP gathers the shards
        return metrics, built
    except BaseException as error:
        if "trainer" in built:
            _record_outcome(summary, built["trainer"], built["module"], _metrics(built["trainer"]))
        summary.fail(error, interrupted=isinstance(error, (KeyboardInterrupt, SystemExit)))
        raise
    finally:
        _write_rank_zero(lambda: log.info("summary: %s", summary.write()))
        _finish_wandb()


def build_module(cfg: DictConfig, plan: TrainingPlan, datamodule) -> MiniMindModule:
    """The LightningModule of a checked plan: its objective prepared for the data's tokenizer, the
    weights of `init_from=` loaded (strictly) when the run starts from them, and LoRA adapters on them
    for stage=lora."""
    formats = plan.objective.data_formats
    if datamodule.format not in formats:
        hint = "for preference pairs use stage=dpo" if datamodule.format == "dpo" else \
            f"give it {' or '.join(formats)} data (data.format=), or choose the stage that trains on this data"
        raise ConfigurationError(f"data.path={cfg.data.path} holds {datamodule.format} data, but this stage "
                                 f"({type(plan.objective).__name__}) trains on {' or '.join(formats)} data: {hint}")
    plan.objective.prepare(tokenizer=datamodule.tokenizer, model_config=plan.model_config, init=plan.init,
                           resume=plan.ckpt_path)
    module = MiniMindModule(plan.model_config, optimizer=instantiate(cfg.optimizer), scheduler=instantiate(cfg.scheduler),
                            weight_decay=cfg.optimizer.get("weight_decay", 0.0), token_bytes=datamodule.token_bytes,
                            objective=plan.objective, compile=cfg.compile,
                            activation_checkpointing=cfg.activation_checkpointing)
    if plan.init is not None:
        load_state_strict(module.model, plan.init.state, f"init_from={plan.init.path}")
        log.info("initialised from %s", plan.init.describe())
    if plan.lora is not None:  # after the base is in: only the adapters train
        module.add_lora(plan.lora)
    return module


def _finish(trainer, module: MiniMindModule, datamodule, run_dir: Path) -> dict[str, float]:
    """Validate at the very last step (runs of any batch size then end on a comparable number)
    and make `last.ckpt` the final state, so resuming a finished run trains nothing twice.
    Returns the final training and validation metrics."""
    metrics = _metrics(trainer)
    if module.last_validated_step != trainer.global_step and trainer.limit_val_batches != 0:
        trainer.validate(module, datamodule=datamodule, verbose=False)
        metrics.update(_metrics(trainer))
    trainer.save_checkpoint(run_dir / LAST_CHECKPOINT, weights_only=False)
    return metrics


def _prepare_resume(ckpt_path: str, run_dir: Path) -> None:
    """Drop the metrics rows the resumed run will log again, so metrics.csv reads as one run."""
    step = safe_torch_load(ckpt_path, mmap=True)["global_step"]
    _write_rank_zero(lambda: trim_metrics_after(run_dir / METRICS_FILE, step))
    log.info("resuming from %s (step %d)", ckpt_path, step)


def _check_data_fits_the_run(cfg: DictConfig, datamodule, model_config, world_size: int) -> None:
    datamodule.prepare_data()  # builds the tokenizer and token cache once; later calls reuse them
    check_vocab_fits(datamodule.vocab_size, model_config.vocab_size,
                     fix=f"set model.vocab_size={datamodule.vocab_size} (or use a tokenizer of at most "
                         f"{model_config.vocab_size} tokens)")
    available = datamodule.num_train_tokens()
    needed = cfg.data.batch_size * cfg.data.seq_len * world_size
    if available is not None and available < needed:
        raise ConfigurationError(
            f"the training data has {available} tokens, fewer than one batch ({cfg.data.batch_size} x "
            f"{cfg.data.seq_len} x {world_size} ranks = {needed}): lower data.batch_size or data.seq_len, "
            "or add data")


def _metrics(trainer) -> dict[str, float]:
    return {k: float(v) for k, v in trainer.callback_metrics.items()}


def _val(metrics: dict[str, float]) -> dict[str, float | None]:
    """The validation metrics among `metrics` (NaN/inf as None: summary.json is strict JSON)."""
    return {k: v if math.isfinite(v) else None for k, v in metrics.items() if k.startswith("val/")}


def _record_outcome(summary: RunSummary, trainer, module: MiniMindModule, metrics: dict[str, float]) -> None:
    summary.update(tokens_seen=module.tokens_seen, steps=trainer.global_step, train_loss=metrics.get("train/loss"),
                   val_loss=metrics.get("val/loss"), val_bpb=metrics.get("val/bpb"),
                   val_at_end=_val(metrics) or None,
                   **module.objective.summary(metrics, summary.data.get("val_at_start")))
    stats = next((c for c in trainer.callbacks if isinstance(c, RunStatsCallback)), None)
    if stats is not None:
        summary.update(tokens_per_sec=stats.tokens_per_sec(), mfu=stats.mfu(trainer.world_size),
                       peak_memory_mb=stats.peak_memory_mb(trainer.strategy.root_device),
                       peak_memory_kind=stats.memory_kind(trainer.strategy.root_device),
                       wall_time_s=stats.wall_time_s())


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def _write_rank_zero(write) -> None:
    """Only rank zero writes files and logs summaries (every rank runs train())."""
    if rank_zero_only.rank == 0:
        write()


def _export_final_weights(cfg: DictConfig, trainer, module: MiniMindModule, run_dir: Path) -> None:
    model = full_model(trainer, module) if cfg.export_pth else None  # None on ranks other than zero
    if model is not None and module.lora is not None:  # upstream's adapter file (the base is init_from=)
        path = save_adapter(model, run_dir / upstream_pth_name(module.config, cfg.stage.name), module.lora.config.scaling)
        log.info("final LoRA adapter in upstream MiniMind form: %s", path)
    elif model is not None:
        path = save_upstream_pth(model, run_dir / upstream_pth_name(module.config, cfg.stage.name))
        log.info("final weights in upstream MiniMind form: %s", path)


def _finish_wandb() -> None:
    """Close the wandb run so the next job of a sweep starts its own run."""
    import wandb

    if wandb.run is not None:
        wandb.finish()
