"""Evaluation beyond loss: EleutherAI's lm-evaluation-harness on any checkpoint the tools load.

    python -m minimind.evaluate ckpt=RUN_DIR benchmark=lm_eval tasks=minimind_stdlib_docs
    python -m minimind.evaluate ckpt=RUN_DIR benchmark=lm_eval tasks=[ceval-valid,cmmlu] limit=100
    python -m minimind.evaluate ckpt=full_sft_512.pth model=small benchmark=lm_eval tasks=piqa apply_chat_template=true
    python -m minimind.evaluate ckpt=RUN_DIR benchmark=lm_eval tasks=my_task include_path=my_tasks/

The checkpoint is exported to a plain `transformers` directory (`minimind.export.export_hf`,
whose logits are checked against ours) in a temporary directory, and lm_eval's own `hf` model
evaluates it, exactly as `lm_eval --model hf --model_args pretrained=DIR,dtype=float32` does:
no `trust_remote_code`, no code of ours in the scoring. The tasks shipped in
`minimind.eval_tasks` are always on the task path (`minimind_stdlib_docs` runs on a fresh clone,
offline); `include_path=DIR` adds the user's task YAMLs (e.g. a task over local data files).

Offline by default: Hugging Face datasets and hub reads use only what is already on this
machine (`HF_DATASETS_OFFLINE`), so a task whose data is not cached fails with a message
instead of downloading; `offline=false` lets lm_eval fetch task data.

Scores are merged into `<run dir>/lm_eval.json` by task (`python -m minimind.compare` shows them)
and printed; `read_scores` is the one reader of that file.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from minimind.errors import ToolError
from minimind.eval_tasks import TASKS_DIR
from minimind.files import atomic_write_text

SCORES = "lm_eval.json"
FILTER_SUFFIX = ",none"  # lm_eval names metrics "acc,none": the metric and its filter
PRIMARY = ("acc", "exact_match", "f1", "bleu")  # the headline metric of a task, in this order of preference


def task_names(tasks: Any) -> list[str]:
    """`tasks=[a,b]` (a list) or `tasks='a,b'` (one string) as a list of names."""
    if isinstance(tasks, str):
        names = [t.strip() for t in tasks.split(",")]
    elif tasks is not None and not isinstance(tasks, (bytes, dict)) and hasattr(tasks, "__iter__"):
        names = [str(t).strip() for t in tasks]
    else:
        names = []
    names = [n for n in names if n]
    if not names:
        raise ToolError("benchmark=lm_eval needs tasks: tasks=minimind_stdlib_docs, tasks=[ceval-valid,cmmlu] "
                        "(or tasks='a,b'); `lm_eval ls tasks` lists lm_eval's own")
    return names


def go_offline() -> None:
    """Make Hugging Face datasets and hub read only local caches, also if they were imported already."""
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    os.environ["HF_HUB_OFFLINE"] = "1"
    if "datasets.config" in sys.modules:  # each reads the variable once, at import
        sys.modules["datasets.config"].HF_HUB_OFFLINE = True
    if "huggingface_hub.constants" in sys.modules:
        sys.modules["huggingface_hub.constants"].HF_HUB_OFFLINE = True


def task_manager(tasks: list[str], include_path: str | list[str] | None = None):
    """lm_eval's TaskManager that knows `tasks`: ours and the user's `include_path` (a dir or a list) alone
    when they hold every task (indexing lm_eval's own thousands of task YAMLs takes tens of seconds),
    else lm_eval's own too. Unknown task names are refused with what to do."""
    from lm_eval.tasks import TaskManager

    paths = [str(TASKS_DIR)]
    for path in [include_path] if isinstance(include_path, str) else list(include_path or []):
        folder = Path(path).expanduser()
        if not folder.is_dir():
            raise ToolError(f"include_path={path}: no such directory (give the folder holding your task YAMLs)")
        paths.append(str(folder.resolve()))
    manager = TaskManager(include_path=paths, include_defaults=False)
    if not all(t in manager.all_tasks for t in tasks):
        manager = TaskManager(include_path=paths)
    unknown = [t for t in tasks if t not in manager.all_tasks]
    if unknown:
        raise ToolError(f"unknown lm_eval task{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: "
                        "`lm_eval ls tasks` lists lm_eval's own, minimind's are in minimind/eval_tasks/ "
                        "(minimind_stdlib_docs); give your own task YAMLs with include_path=DIR")
    return manager


def evaluate_hf_dir(hf_dir: str | Path, tasks: list[str], include_path: str | list[str] | None = None,
                    limit: int | float | None = None, num_fewshot: int | None = None,
                    apply_chat_template: bool = False, batch_size: int = 16, device: str = "cpu",
                    dtype: str = "float32", offline: bool = True) -> dict[str, Any]:
    """`lm_eval.simple_evaluate` with the `hf` model on a transformers directory; returns lm_eval's results."""
    if offline:
        go_offline()
    import lm_eval

    logging.getLogger("lm_eval").setLevel(logging.WARNING)  # its per-request INFO lines drown the result
    manager = task_manager(tasks, include_path)
    try:
        return lm_eval.simple_evaluate(
            model="hf", model_args={"pretrained": str(hf_dir), "dtype": dtype, "trust_remote_code": False},
            tasks=tasks, task_manager=manager, limit=limit, num_fewshot=num_fewshot, batch_size=batch_size,
            device=str(device), apply_chat_template=apply_chat_template, log_samples=False)
    except ConnectionError as error:  # offline and the task's data is not in the local cache
        raise ToolError(
            f"the data of {', '.join(tasks)} is not on this machine ({error}): download it once where there is "
            "network (python -c \"import datasets; datasets.load_dataset('<dataset_path>', '<dataset_name>')\" "
            "fills the same cache), give a task YAML over local files with include_path=DIR, or allow "
            "downloads with offline=false") from None


def evaluate_model(model, tokenizer, tasks: list[str], dtype=None, **kwargs: Any) -> dict[str, Any]:
    """Export `model` (a MiniMindForCausalLM) with its tokenizer, in `dtype` (a torch dtype; default
    float32), to a temporary transformers directory and evaluate it there (`evaluate_hf_dir`'s keyword
    arguments)."""
    import torch

    from minimind.export import export_hf

    dtype = dtype or torch.float32
    if tokenizer is None:
        raise ToolError("lm_eval needs the checkpoint's tokenizer: give tokenizer=DIR")
    with tempfile.TemporaryDirectory(prefix="minimind-lm-eval-") as tmp:
        export_hf(model, tokenizer, Path(tmp) / "hf", dtype=dtype)
        return evaluate_hf_dir(Path(tmp) / "hf", tasks, dtype=str(dtype).removeprefix("torch."), **kwargs)


def scores(results: dict[str, Any], tasks: list[str], **settings: Any) -> dict[str, dict[str, Any]]:
    """Each requested task's entry for lm_eval.json: its `metrics` from lm_eval's results ("acc,none" ->
    "acc", with "acc_stderr"), the number of documents scored, lm_eval's versions and `settings`."""
    from importlib.metadata import version

    found: dict[str, dict[str, Any]] = {}
    for name in tasks:
        raw = (results.get("results") or {}).get(name) or (results.get("groups") or {}).get(name)
        if raw is None:
            continue
        metrics = {key.removesuffix(FILTER_SUFFIX): float(value) for key, value in raw.items()
                   if key.endswith(FILTER_SUFFIX) and isinstance(value, (int, float))}
        samples = (results.get("n-samples") or {}).get(name) or {}
        found[name] = {"metrics": metrics, "samples": samples.get("effective"),
                       "num_fewshot": (results.get("n-shot") or {}).get(name),
                       "task_version": str((results.get("versions") or {}).get(name)),
                       "lm_eval_version": version("lm_eval"),
                       "evaluated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), **settings}
    return found


def primary_metric(entry: dict[str, Any]) -> tuple[str, float, float | None] | None:
    """(name, value, stderr) of a task's headline metric: acc, else exact_match, f1, bleu, else the first."""
    metrics = entry.get("metrics") or {}
    names = [k for k, v in metrics.items() if isinstance(v, (int, float)) and not k.endswith("_stderr")]
    name = next((m for m in PRIMARY if m in names), names[0] if names else None)
    if name is None:
        return None
    stderr = metrics.get(f"{name}_stderr")
    return name, float(metrics[name]), float(stderr) if isinstance(stderr, (int, float)) else None


def read_scores(run_dir: str | Path) -> dict[str, dict[str, Any]]:
    """Task -> scores from `<run dir>/lm_eval.json` ({} without the file)."""
    return read_scores_file(Path(run_dir) / SCORES)


def read_scores_file(path: str | Path) -> dict[str, dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ToolError(f"{path.name} unreadable ({type(error).__name__}: {error})") from None
    tasks = data.get("tasks") if isinstance(data, dict) else None
    if not isinstance(tasks, dict):
        raise ToolError(f"{path.name} has no `tasks` object: not written by minimind.evaluate benchmark=lm_eval")
    return {name: entry for name, entry in tasks.items() if isinstance(entry, dict)}


def write_scores(path: str | Path, entries: dict[str, dict[str, Any]]) -> Path:
    """Merge `entries` into the scores file at `path` (a task evaluated again replaces its entry)."""
    merged = read_scores_file(path)
    merged.update(entries)
    return atomic_write_text(path, json.dumps({"tasks": merged}, indent=2, allow_nan=False) + "\n")


def format_scores(entries: dict[str, dict[str, Any]]) -> str:
    """One line per task: its metrics (with standard errors) and the number of documents."""
    lines = []
    for name, entry in entries.items():
        metrics = entry.get("metrics") or {}
        parts = []
        for metric, value in metrics.items():
            if metric.endswith("_stderr"):
                continue
            stderr = metrics.get(f"{metric}_stderr")
            parts.append(f"{metric} {value:.4f}" + (f" ± {stderr:.4f}" if isinstance(stderr, float) else ""))
        shots = f", {entry['num_fewshot']}-shot" if entry.get("num_fewshot") else ""
        lines.append(f"{name}: {'  '.join(parts)}  ({entry.get('samples')} documents{shots})")
    return "\n".join(lines)
