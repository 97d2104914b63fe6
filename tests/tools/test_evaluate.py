"""`minimind.evaluate` reproduces a real training run's logged validation numbers."""

from __future__ import annotations

import csv
import json
import math

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from minimind.evaluate import evaluate
from minimind.checkpoints import load_checkpoint
from minimind.runs import run_config
from tools_helpers import run_tool


def logged_val(run_dir) -> dict[str, float]:
    """The last validation row of the run's metrics.csv (what the CSV logger wrote during training)."""
    with open(run_dir / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("val/loss")]
    return {k: float(rows[-1][f"val/{k}"]) for k in ("loss", "ppl", "bpb")}


def test_evaluation_equals_the_validation_logged_during_training(trained_run):
    run_dir, metrics = trained_run
    loaded = load_checkpoint(run_dir)  # last.ckpt, written at the final step, right after the final validation
    run = run_config(run_dir)
    datamodule = instantiate(OmegaConf.create(run["data"]))
    result = evaluate(loaded.model, datamodule, limit_batches=run["trainer"]["limit_val_batches"])
    assert result["batches"] == 3
    assert result["loss"] == pytest.approx(metrics["val/loss"], rel=1e-6)
    assert result["ppl"] == pytest.approx(metrics["val/ppl"], rel=1e-6)
    assert result["bpb"] == pytest.approx(metrics["val/bpb"], rel=1e-6)
    assert logged_val(run_dir)["loss"] == pytest.approx(result["loss"], rel=1e-6)


def test_splits_and_limits(trained_run):
    run_dir, _ = trained_run
    loaded = load_checkpoint(run_dir)
    data = OmegaConf.create(run_config(run_dir)["data"])
    one = evaluate(loaded.model, instantiate(data), limit_batches=1)
    both = evaluate(loaded.model, instantiate(data), split="all", limit_batches=4)  # 4 per split, as Lightning
    assert one["batches"] == 1 and 4 < both["batches"] <= 8
    assert both["tokens"] > one["tokens"] and math.isfinite(both["loss"])
    assert both["ppl"] == pytest.approx(math.exp(both["loss"]))


@pytest.mark.slow
def test_command_defaults_to_the_runs_validation(trained_run, tmp_path, tiny_corpus):
    run_dir, metrics = trained_run
    out = tmp_path / "eval.json"
    proc = run_tool("evaluate", f"ckpt={run_dir}", f"out={out}")
    result = json.loads(out.read_text())
    assert result["loss"] == pytest.approx(metrics["val/loss"], rel=1e-6)
    assert result["bpb"] == pytest.approx(metrics["val/bpb"], rel=1e-6)
    assert result["limit_batches"] == 3 and result["seq_len"] == 32
    assert f"loss {metrics['val/loss']:.4f}" in proc.stdout
