"""Loss, perplexity and bits per byte of a trained MiniMind on a corpus, exactly as validation computes them;
or lm-evaluation-harness tasks (`benchmark=lm_eval`, see minimind.harness).

    python -m minimind.evaluate ckpt=outputs/runs/DATE/TIME            # its run's validation set: = val/loss
    python -m minimind.evaluate ckpt=RUN_DIR data.path=data/other.jsonl  # another corpus, same settings
    python -m minimind.evaluate ckpt=RUN_DIR split=all limit_batches=null out=eval.json
    python -m minimind.evaluate ckpt=pretrain_512.pth model=small data.path=pretrain_hq.jsonl data.tokenizer=model/
    python -m minimind.evaluate ckpt=RUN_DIR benchmark=lm_eval tasks=minimind_stdlib_docs   # -> RUN_DIR/lm_eval.json
    python -m minimind.evaluate ckpt=RUN_DIR benchmark=lm_eval tasks=[ceval-valid,cmmlu] limit=200

The batches come from `MiniMindDataModule.val_dataloader()` and the sums from the same
`LanguageModelMetrics` as `MiniMindModule.validation_step`, so for a checkpoint of a training
run the default command reproduces that run's logged `val/loss`, `val/ppl` and `val/bpb`:
the data settings, `limit_batches` (`trainer.limit_val_batches`) and `precision` default to
the run's (its `config.yaml`), and `data.<field>=...` on the command line changes them.
`split=train|all` evaluates the training split (one full pass) or both splits instead.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from minimind.checkpoints import load_checkpoint, resolve_tokenizer
from minimind.checkpoints.load import tokenizer_dir
from minimind.cli import command_line_model_config, describe, hydra_app, pick_device, pick_dtype
from minimind.data.tokenizer import check_vocab_fits
from minimind.errors import ToolError
from minimind.model import MiniMindForCausalLM
from minimind.precision import parse_precision
from minimind.runs import command_line_overrides, overridden, overrides_under, run_config
from minimind.training.metrics import LanguageModelMetrics

SPLITS = ("val", "train", "all")
BENCHMARKS = ("loss", "lm_eval")
LOSS_ONLY = ("split", "limit_batches", "precision", "from_run", "data")  # settings benchmark=lm_eval does not use
LM_EVAL_ONLY = ("tasks", "include_path", "limit", "num_fewshot", "apply_chat_template", "batch_size", "dtype",
                "offline")


def _batches(loader, limit: int | float | None):
    """Lightning's `limit_val_batches`: an int caps the count, a float is a fraction, None/1.0 is all."""
    if isinstance(limit, float) and limit != 1.0:
        limit = int(len(loader) * limit) if hasattr(loader, "__len__") else None
    for i, batch in enumerate(loader):
        if isinstance(limit, int) and not isinstance(limit, bool) and i >= limit:
            return
        yield batch


@torch.inference_mode()
def evaluate(model: MiniMindForCausalLM, datamodule: Any, split: str = "val",
             limit_batches: int | float | None = None, precision: str = "32-true") -> dict[str, float]:
    """Run `model` over the datamodule's `split` batches; returns loss, ppl, bpb, tokens, batches.

    `datamodule` is a `MiniMindDataModule` (anything with `prepare_data`, `setup`,
    `val_dataloader`/`train_dataloader` yielding {input_ids, labels} and `token_bytes`).
    `limit_batches` applies per split, as Lightning's `limit_val_batches` does."""
    if split not in SPLITS:
        raise ToolError(f"split={split!r} must be one of {SPLITS}")
    device = next(model.parameters()).device
    precision = parse_precision(precision)
    autocast = precision.autocast(device)
    model = model.to(precision.param_dtype).eval()
    datamodule.prepare_data()
    datamodule.setup("validate" if split == "val" else "fit")
    token_bytes = torch.as_tensor(datamodule.token_bytes, dtype=torch.long, device=device)
    metrics = LanguageModelMetrics().to(device)
    loaders = {"val": [datamodule.val_dataloader()], "train": [datamodule.train_dataloader()],
               "all": [datamodule.train_dataloader(), datamodule.val_dataloader()]}[split]
    batches = 0
    with autocast:
        for loader in loaders:
            for batch in _batches(loader, limit_batches):
                input_ids, labels = batch["input_ids"].to(device), batch["labels"].to(device)
                documents = batch["document_ids"].to(device) if "document_ids" in batch else None  # packed SFT
                out = model(input_ids, labels=labels, document_ids=documents)
                metrics.update(out.loss, labels[:, 1:], token_bytes)
                batches += 1
    if batches == 0:
        raise ToolError(f"the {split} split gave no batches: check data.path, data.val_fraction and limit_batches")
    values = {k: float(v) for k, v in metrics.compute().items()}
    return {**values, "tokens": int(metrics.tokens), "bytes": int(metrics.bytes), "batches": batches}


def data_config(cfg: DictConfig, run: dict[str, Any] | None, tokenizer: str) -> DictConfig:
    """The data module's config: the run's `data` (if any) with the command line's `data.*` on top,
    and the checkpoint's tokenizer unless `data.tokenizer=` was given."""
    data_overrides = overrides_under(command_line_overrides(), "data")
    if run is not None and cfg.from_run and isinstance(run.get("data"), dict):
        data = OmegaConf.merge(OmegaConf.create(run["data"]), OmegaConf.from_dotlist(data_overrides))
    else:
        data = cfg.data.copy()
    with open_dict(data):
        if not any(o.startswith("tokenizer=") for o in data_overrides):
            data.tokenizer = tokenizer
    return data


def check_benchmark(benchmark: str, overrides: list[str]) -> None:
    """Refuse a benchmark's settings given to the other one: they would be silently ignored."""
    if benchmark not in BENCHMARKS:
        raise ToolError(f"benchmark={benchmark!r}: choose one of {BENCHMARKS}")
    foreign = LOSS_ONLY if benchmark == "lm_eval" else LM_EVAL_ONLY
    given = [key for key in foreign if overridden(overrides, key)]
    if given:
        other = "loss" if benchmark == "lm_eval" else "lm_eval"
        fix = "add benchmark=lm_eval" if benchmark == "loss" else f"drop {'it' if len(given) == 1 else 'them'}"
        raise ToolError(f"{', '.join(given)} {'is a setting' if len(given) == 1 else 'are settings'} of "
                        f"benchmark={other}, not benchmark={benchmark}: {fix}")


def run_lm_eval(cfg: DictConfig, device) -> float:
    """lm-evaluation-harness on the checkpoint; scores merged into <run dir>/lm_eval.json (and `out`)."""
    from minimind.harness import (SCORES, evaluate_model, format_scores, primary_metric, scores, task_names,
                                  write_scores)

    def plain(value):
        return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value

    tasks, dtype = task_names(plain(cfg.tasks)), pick_dtype(cfg.dtype)  # both checked before loading
    loaded = load_checkpoint(cfg.ckpt, command_line_model_config(cfg))  # lm_eval moves it to `device`
    print(describe(loaded), file=sys.stderr, flush=True)
    results = evaluate_model(loaded.model, resolve_tokenizer(loaded, cfg.tokenizer), tasks, dtype=dtype,
                             include_path=plain(cfg.include_path), limit=cfg.limit, num_fewshot=cfg.num_fewshot,
                             apply_chat_template=cfg.apply_chat_template, batch_size=cfg.batch_size,
                             device=str(device), offline=cfg.offline)
    ckpt = loaded.path.relative_to(loaded.run_dir) if loaded.run_dir and loaded.path.is_relative_to(loaded.run_dir) \
        else loaded.path
    entries = scores(results, tasks, limit=cfg.limit, apply_chat_template=bool(cfg.apply_chat_template),
                     ckpt=str(ckpt))
    print(format_scores(entries))
    written = [write_scores(path, entries) for path in
               ([loaded.run_dir / SCORES] if loaded.run_dir is not None else []) + ([Path(cfg.out)] if cfg.out else [])]
    if written:
        print("scores: " + ", ".join(map(str, written)))
    else:
        print("scores not written: the checkpoint belongs to no training run; give out=FILE to keep them",
              file=sys.stderr)
    first = primary_metric(next(iter(entries.values()))) if entries else None
    return first[1] if first else math.nan


@hydra_app("evaluate")
def main(cfg: DictConfig) -> float:
    check_benchmark(cfg.benchmark, command_line_overrides())
    device = pick_device(cfg.device)
    if cfg.benchmark == "lm_eval":
        return run_lm_eval(cfg, device)
    loaded = load_checkpoint(cfg.ckpt, command_line_model_config(cfg), device=device)
    print(describe(loaded), file=sys.stderr, flush=True)
    run = run_config(loaded.run_dir) if cfg.from_run else None
    trainer = (run or {}).get("trainer") or {}
    limit = cfg.limit_batches if cfg.limit_batches != "run" else trainer.get("limit_val_batches")
    precision = cfg.precision if cfg.precision != "run" else trainer.get("precision", "32-true")
    data = data_config(cfg, run, tokenizer_dir(loaded, cfg.tokenizer))
    datamodule = instantiate(data)
    check_vocab_fits(len(datamodule.tokenizer), loaded.config.vocab_size,
                     fix="give data.tokenizer= the tokenizer the checkpoint was trained with")
    result = evaluate(loaded.model, datamodule, cfg.split, limit, precision)
    result.update(ckpt=str(loaded.path), data_path=str(data.path), split=cfg.split, precision=str(precision),
                  limit_batches=limit, seq_len=int(data.seq_len), batch_size=int(data.batch_size))
    print(f"{cfg.split} on {data.path}: loss {result['loss']:.4f}  ppl {result['ppl']:.3f}  bpb {result['bpb']:.4f}  "
          f"({result['batches']} batches, {result['tokens']} tokens, {result['bytes']} bytes, precision {precision})")
    if cfg.out:
        out = Path(cfg.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
    return result["loss"] if math.isfinite(result["loss"]) else math.nan


if __name__ == "__main__":
    main()
