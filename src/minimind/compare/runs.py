"""Reading a sweep's run dirs: what each run was, how it ended, and its loss curves.

Only files in the run dirs are read (no wandb, no network), and every one of them may be
missing or cut short: a job refused before training has only `summary.json` (status
failed, with the error); a killed job has `metrics.csv` but no `summary.json`. What the
summary lacks is filled from `metrics.csv` where it can be, and each such gap is noted.

Lightning logs a training step and the validation after it at the same `step` value,
with `train/tokens` (tokens seen so far, all ranks) and `perf/wall_time_s` (seconds since
the run started) on the training rows, so a validation row's tokens and time are read off
the training rows at its step. Training FLOPs are tokens times the model's own
`training_flops_per_token` (minimind.model.flops) at the run's `data.seq_len`.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from minimind.errors import ToolError
from minimind.runs import (is_run_dir, load_yaml, parse_override, recorded_overrides, run_config_file,
                           user_overrides)

SKIP_DIRS = {"checkpoints", "wandb", "tensorboard", "__pycache__"}  # never hold run dirs
NO_SUMMARY = "interrupted (no summary)"
SEED = "seed"  # the one override that makes runs repeats of one configuration


class NoRunsError(ToolError):
    """The directory holds no run dirs; the message says what was expected."""


@dataclass
class Curve:
    """A metric against tokens seen (1-D float arrays of equal length, tokens ascending) and the
    wall time of each point (seconds since the run started; NaN where unknown)."""

    tokens: np.ndarray = field(default_factory=lambda: np.zeros(0))
    values: np.ndarray = field(default_factory=lambda: np.zeros(0))
    seconds: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __len__(self) -> int:
        return len(self.values)


@dataclass
class Run:
    name: str  # the run dir relative to the compared dir ("0", "1", ...)
    path: Path
    status: str
    error: str | None = None
    overrides: list[str] | None = None  # None: not recorded anywhere
    seed: int | None = None  # the run's `seed` (config.yaml, else its overrides)
    params: int | None = None
    breakdown: dict[str, int] | None = None  # parameter_breakdown of the run's model config
    flops_per_token: int | None = None  # training_flops_per_token of the run's model at its seq_len
    tokens_seen: int | None = None
    steps: int | None = None
    train_loss: float | None = None
    val_loss: float | None = None
    val_bpb: float | None = None
    tokens_per_sec: float | None = None
    mfu: float | None = None
    peak_memory_mb: float | None = None
    wall_time_s: float | None = None
    started_at: datetime | None = None  # summary.json's timestamps
    finished_at: datetime | None = None
    train_curve: Curve = field(default_factory=Curve)
    val_curve: Curve = field(default_factory=Curve)
    config: dict[str, Any] | None = None
    lm_eval: dict[str, dict[str, Any]] = field(default_factory=dict)  # task -> scores, from lm_eval.json
    notes: list[str] = field(default_factory=list)  # what was missing, unreadable or filled in
    label: str = ""  # the varying overrides, set by `label_runs`
    config_label: str = ""  # the same without the seed: what the run's configuration is

    @property
    def train_flops(self) -> float | None:
        """FLOPs spent training: tokens seen x the model's training FLOPs per token."""
        if self.flops_per_token is None or self.tokens_seen is None:
            return None
        return float(self.flops_per_token) * self.tokens_seen

    @property
    def completed(self) -> bool:
        return self.status == "completed"

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    @property
    def error_line(self) -> str:
        """The error's first line without the exception's module path, continued where it ends in ":"."""
        lines = [line.strip() for line in (self.error or "").splitlines() if line.strip()]
        if not lines:
            return ""
        first = re.sub(r"^(?:[A-Za-z_][\w]*\.)+(?=[A-Za-z_]\w*(?::|$))", "", lines[0])
        if first.endswith(":") and len(lines) > 1:
            first = f"{first} {lines[1].lstrip('- ')}"
        return first


# ---------------------------------------------------------------------------- finding runs

def find_run_dirs(root: Path) -> list[Path]:
    """Dirs under `root` (or `root` itself) holding summary.json or config.yaml, in natural order
    (also a Hydra job dir with only metrics.csv).

    Hydra's own `.hydra/` dirs (which hold a config.yaml too) and the insides of a run dir
    (checkpoints, wandb, ...) are not searched: runs do not nest.
    """
    root = Path(root)
    if is_run_dir(root):
        return [root]
    found: list[Path] = []
    for child in sorted(_subdirs(root), key=lambda p: natural_key(p.name)):
        found.extend(find_run_dirs(child))
    return found


def _subdirs(path: Path) -> list[Path]:
    try:
        return [p for p in path.iterdir()
                if p.is_dir() and not p.is_symlink()  # a "latest" link would list runs twice
                and not p.name.startswith(".") and p.name not in SKIP_DIRS]
    except OSError:
        return []


def natural_key(text: str) -> list:
    """Sort "2" before "10": digit runs compare as numbers."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", text) if part]


def load_runs(root: Path) -> list[Run]:
    """Every run under `root`; raises NoRunsError when there is none."""
    root = Path(root)
    if not root.is_dir():
        raise NoRunsError(f"{root} is not a directory: pass a Hydra multirun dir (holding 0/, 1/, ...) or a run dir")
    dirs = find_run_dirs(root)
    if not dirs:
        raise NoRunsError(
            f"no run dirs found under {root}: expected dirs holding summary.json or config.yaml "
            "(a Hydra multirun dir holds 0/, 1/, ..., each written by `python train.py -m ...`)")
    return [load_run(d, root) for d in dirs]


# ---------------------------------------------------------------------------- one run

def load_run(path: Path, root: Path | None = None) -> Run:
    path = Path(path)
    name = path.name if root is None or path == Path(root) else path.relative_to(root).as_posix()
    run = Run(name=name, path=path, status=NO_SUMMARY)

    summary = _read_json(path / "summary.json", run)
    if summary is not None:
        run.status = str(summary.get("status") or "unknown")
        run.error = summary.get("error")
        run.overrides = _str_list(summary.get("overrides"))
        for key in ("params", "tokens_seen", "steps"):
            setattr(run, key, _int(summary.get(key)))
        for key in ("train_loss", "val_loss", "val_bpb", "tokens_per_sec", "mfu", "peak_memory_mb", "wall_time_s"):
            setattr(run, key, _float(summary.get(key)))
        for key in ("started_at", "finished_at"):
            setattr(run, key, _time(summary.get(key)))
    elif (path / "summary.json").exists():
        run.status = "unknown (summary.json unreadable)"
    if run.overrides is None:
        run.overrides = recorded_overrides(path)

    # Here, not at the top: importing the model package imports torch, which `--help` and an
    # empty dir need not wait for.
    from minimind.harness import read_scores
    from minimind.model import MiniMindConfig
    from minimind.model.flops import training_flops_per_token
    from minimind.model.params import parameter_breakdown

    run.config = _read_config(path, run)
    if run.config is not None:
        run.seed = _int(run.config.get("seed"))
        model = run.config.get("model")
        if isinstance(model, dict):
            try:
                model_config = MiniMindConfig.from_dict(model)
                run.breakdown = parameter_breakdown(model_config)
            except Exception as error:  # a config the model refuses is a reason to fail, not to crash here
                run.notes.append(f"no parameter split: the model config is invalid ({_first_line(error)})")
            else:
                seq_len = _int((run.config.get("data") or {}).get("seq_len"))
                if seq_len:
                    run.flops_per_token = training_flops_per_token(model_config, seq_len)
                else:
                    run.notes.append("no FLOPs: the config has no data.seq_len")
        else:
            run.notes.append("no parameter split: the config has no `model` node")
    if run.seed is None and run.overrides is not None:
        run.seed = _int(dict(parse_override(o) for o in run.overrides).get("seed"))
    if run.breakdown is not None:
        if run.params is not None and run.params != run.breakdown["total"]:
            run.notes.append(f"summary.json counts {run.params:,} parameters, the model config gives "
                             f"{run.breakdown['total']:,}; the table shows the config's count")
        run.params = run.breakdown["total"]

    metrics_path = _metrics_path(path)
    if metrics_path is not None:
        _read_metrics(metrics_path, run)
    elif not run.failed:
        run.notes.append("no metrics.csv: no curves")
    try:
        run.lm_eval = read_scores(path)
    except ToolError as error:
        run.notes.append(str(error))
    return run


def _read_json(path: Path, run: Run) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        run.notes.append(f"summary.json unreadable ({_first_line(error)})")
        return None
    if not isinstance(data, dict):
        run.notes.append("summary.json is not a JSON object")
        return None
    return data


def _read_config(path: Path, run: Run) -> dict[str, Any] | None:
    """The run's config (`config.yaml`, else Hydra's copy), noting which was read."""
    file = run_config_file(path)
    if file is None:
        return None
    try:
        data = load_yaml(file, resolve=True)
    except Exception as error:
        run.notes.append(f"{file.relative_to(path)} unreadable ({_first_line(error)})")
        return None
    if file.parent != path:
        run.notes.append("config.yaml missing: read Hydra's .hydra/config.yaml")
    return data if isinstance(data, dict) else None


def _metrics_path(path: Path) -> Path | None:
    """`metrics.csv` in the run dir; else the newest one a CSVLogger put in a subdir."""
    if (path / "metrics.csv").is_file():
        return path / "metrics.csv"
    nested = []
    for folder, subdirs, files in os.walk(path):
        subdirs[:] = [d for d in subdirs if d not in SKIP_DIRS and not d.startswith(".")]  # not into wandb/
        if "metrics.csv" in files:
            nested.append(Path(folder) / "metrics.csv")
    return max(nested, key=lambda p: p.stat().st_mtime) if nested else None


# ---------------------------------------------------------------------------- metrics.csv

def read_metrics_csv(path: Path) -> dict[str, dict[int, float]]:
    """Column -> {step: value} from a CSVLogger file whose rows fill only some columns.

    A step logged twice (a resumed run appends to the same file) keeps its last value; a
    row cut short by a kill (fewer cells than the header; its last one may be cut too) and
    any cell that is not a finite number are skipped.
    """
    columns: dict[str, dict[int, float]] = {}
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            step = _float(row.get("step"))
            if step is None or None in row.values():
                continue
            for key, text in row.items():
                if key in (None, "step", "epoch"):
                    continue
                value = _float(text)
                if value is not None:
                    columns.setdefault(key, {})[int(step)] = value
    return columns


def _read_metrics(path: Path, run: Run) -> None:
    try:
        columns = read_metrics_csv(path)
    except (OSError, csv.Error, UnicodeDecodeError) as error:
        run.notes.append(f"metrics.csv unreadable ({_first_line(error)})")
        return
    tokens = columns.get("train/tokens", {})
    to_tokens = _step_to_tokens(tokens, run)
    if to_tokens is None and (columns.get("train/loss") or columns.get("val/loss")):
        run.notes.append("no tokens in metrics.csv or summary.json: curves cannot be placed on a token axis")
    to_seconds = _step_to_seconds(columns.get("perf/wall_time_s", {}))

    def curve(column: str) -> Curve:
        points = columns.get(column, {})
        if not points or to_tokens is None:
            return Curve()
        steps = np.array(sorted(points), dtype=float)
        x = np.array([tokens.get(int(s), math.nan) for s in steps])
        x = np.where(np.isnan(x), to_tokens(steps), x)
        seconds = to_seconds(steps) if to_seconds is not None else np.full(len(steps), math.nan)
        return Curve(x, np.array([points[int(s)] for s in steps]), seconds)

    run.train_curve = curve("train/loss")
    run.val_curve = curve("val/loss")

    def last(column: str) -> float | None:
        points = columns.get(column)
        return points[max(points)] if points else None

    filled = []
    for attr, value in (("train_loss", last("train/loss")), ("val_loss", last("val/loss")),
                        ("val_bpb", last("val/bpb")), ("tokens_seen", last("train/tokens")),
                        ("tokens_per_sec", _steady(columns, "perf/tokens_per_sec", "train|items_per_sec")),
                        ("mfu", _steady(columns, "perf/mfu", "train|device/mfu"))):
        if getattr(run, attr) is None and value is not None:
            setattr(run, attr, int(value) if attr == "tokens_seen" else value)
            filled.append(attr)
    if run.steps is None and columns:
        run.steps = max(max(points) for points in columns.values()) + 1
        filled.append("steps")
    if filled:
        run.notes.append("from metrics.csv (not in summary.json): " + ", ".join(filled))
    if to_seconds is None and len(run.val_curve) and run.wall_time_s and run.tokens_seen:
        # Runs logged before perf/wall_time_s: time taken as proportional to tokens.
        run.val_curve.seconds = run.val_curve.tokens / run.tokens_seen * run.wall_time_s
        run.notes.append("no perf/wall_time_s in metrics.csv: wall time of each validation taken as "
                         "proportional to tokens (summary.json's wall_time_s)")


def _piecewise(steps: np.ndarray, values: np.ndarray, per_step: float):
    """Step -> value: interpolated between the logged steps, extrapolated at `per_step` beyond them."""
    def mapping(s: np.ndarray) -> np.ndarray:
        s = np.asarray(s, dtype=float)
        inside = np.interp(s, steps, values)
        below = values[0] + per_step * (s - steps[0])
        above = values[-1] + per_step * (s - steps[-1])
        return np.where(s < steps[0], below, np.where(s > steps[-1], above, inside))

    return mapping


def _step_to_seconds(seconds: dict[int, float]):
    """A function mapping logged steps to seconds since the run started, or None without a time column.

    Interpolated between training rows and extrapolated beyond them at the median seconds per
    step. A resumed run restarts its clock: each restart continues from the time it stopped at.
    """
    if not seconds:
        return None
    steps = np.array(sorted(seconds), dtype=float)
    times = np.array([seconds[int(s)] for s in steps])
    for i in range(1, len(times)):  # a resumed run's clock starts again at 0: add the time logged before
        if times[i] < times[i - 1]:
            times[i:] += times[i - 1]
    per_step = float(np.median(np.diff(times) / np.diff(steps))) if len(steps) > 1 else 0.0
    mapping = _piecewise(steps, times, per_step)
    return lambda s: np.maximum(0.0, mapping(s))


def _step_to_tokens(tokens: dict[int, float], run: Run):
    """A function mapping logged steps to tokens seen after them, or None without any token count.

    Lightning logs step s (0-based) after s + 1 optimizer steps, so tokens = per_step * (s + 1);
    between logged training rows the counts are interpolated (robust to a changed batch size
    on resume), beyond them extrapolated at the median tokens per step.
    """
    if tokens:
        steps = np.array(sorted(tokens), dtype=float)
        counts = np.array([tokens[int(s)] for s in steps])
        return _piecewise(steps, counts, float(np.median(counts / (steps + 1))))
    if run.tokens_seen and run.steps:
        per_step = run.tokens_seen / run.steps
        return lambda s: per_step * (np.asarray(s, dtype=float) + 1)
    return None


def _steady(columns: dict[str, dict[int, float]], *names: str) -> float | None:
    """The median of a rolling throughput column (the first logged windows include start-up)."""
    for name in names:
        points = columns.get(name)
        if points:
            return float(np.median(list(points.values())))
    return None


# ---------------------------------------------------------------------------- labels and order

def label_runs(runs: list[Run]) -> list[str]:
    """Set each run's `label` to its varying overrides, compactly, and its `config_label` to the same
    without the seed; return the overrides all runs share.

    A key is shortened to its last part ("model.hidden_size" -> "hidden_size") where that
    stays unambiguous. A run whose overrides are not recorded is labelled by its dir name.
    """
    known = [dict(parse_override(o) for o in run.overrides) for run in runs if run.overrides is not None]
    keys: list[str] = []
    for overrides in known:
        keys.extend(k for k in overrides if k not in keys)
    common = [k for k in keys if all(k in o for o in known) and len({o[k] for o in known}) == 1]
    varying = [k for k in keys if k not in common]
    last = {k: k.rsplit(".", 1)[-1] for k in varying}
    short = {k: last[k] if list(last.values()).count(last[k]) == 1 else k for k in varying}
    for run in runs:
        if run.overrides is None:
            run.label = run.config_label = run.name
            continue
        values = dict(parse_override(o) for o in run.overrides)
        parts = [f"{short[k]}={values[k]}" for k in varying if k in values]  # absent keys: the default
        config_parts = [f"{short[k]}={values[k]}" for k in varying if k in values and k != SEED]
        run.label = ", ".join(parts) if parts else ("(defaults)" if varying else run.name)
        if config_parts:
            run.config_label = ", ".join(config_parts)
        elif any(k != SEED for k in varying):
            run.config_label = "(defaults)"
        else:  # only the seed varies (or nothing, for a single run)
            run.config_label = "(every run)" if len(runs) > 1 else run.label
    if len(runs) > 1 and len({r.label for r in runs}) < len(runs):  # same overrides twice (e.g. seeds)
        for run in runs:
            run.label = f"{run.name}: {run.label}" if run.label != run.name else run.name
    return [f"{k}={known[0][k]}" for k in common] if known else []


def configuration_key(run: Run) -> tuple:
    """What a run is apart from its seed: its overrides without `seed`, in a fixed order.

    Runs whose overrides are not recorded are each their own configuration."""
    if run.overrides is None:
        return ("unrecorded", run.name)
    return tuple(sorted((k, v) for k, v in map(parse_override, run.overrides) if k != SEED))


SORT_KEYS = {  # key -> (Run attribute, descending)
    "val_loss": ("val_loss", False),
    "val_bpb": ("val_bpb", False),
    "train_loss": ("train_loss", False),
    "params": ("params", False),
    "tokens_per_sec": ("tokens_per_sec", True),
    "peak_memory_mb": ("peak_memory_mb", False),
    "mfu": ("mfu", True),
    "name": ("name", False),
}


def sort_runs(runs: list[Run], by: str = "val_loss") -> list[Run]:
    """Completed runs first, best first by `by`; then runs that did not complete; runs without the value last."""
    attr, descending = SORT_KEYS[by]

    def key(run: Run):
        if attr == "name":
            return (False, False, 0.0, natural_key(run.name))
        value = getattr(run, attr)
        missing = value is None
        order = 0.0 if missing else (-value if descending else value)
        return (missing, not run.completed, order, natural_key(run.name))

    return sorted(runs, key=key)


# ---------------------------------------------------------------------------- the sweep

@dataclass
class Sweep:
    name: str
    launch_overrides: list[str] | None = None  # the -m command line, from multirun.yaml


def read_sweep(root: Path, runs: list[Run] = ()) -> Sweep:
    """The sweep's name (`sweep_name` or `group` of its config, else the dir) and launch overrides.

    Both come from Hydra's multirun.yaml where there is one; the name also from a run's config.
    """
    root = Path(root).resolve()
    dir_name = root.name if not root.parent.name else f"{root.parent.name}/{root.name}"
    configs = [run.config for run in runs if run.config]
    launch = None
    file = root / "multirun.yaml"
    if file.is_file():
        try:
            cfg = load_yaml(file)
            configs.insert(0, cfg)
            launch = _str_list(cfg.get("hydra", {}).get("overrides", {}).get("task"))
        except Exception:
            pass
    if launch is not None:
        launch = user_overrides(launch)
    names = [c.get(key) for c in configs for key in ("sweep_name", "group")]
    name = next((n for n in names if isinstance(n, str) and n and "${" not in n), None)
    return Sweep(name=f"{name} ({dir_name})" if name else dir_name, launch_overrides=launch)


# ---------------------------------------------------------------------------- small helpers

def _float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _int(value: Any) -> int | None:
    number = _float(value)
    return None if number is None else int(number)


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _str_list(value: Any) -> list[str] | None:
    if not isinstance(value, (list, tuple)):
        return None
    return [str(v) for v in value]


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
