"""Exact resume after SIGKILL, and two-process DDP on CPU: real `python train.py` processes."""

import csv
import json
import subprocess
import sys

import pytest
import torch

from commands import kill_at_first_checkpoint, train_losses
from compose_train import REPO_ROOT


def launch(args, **kwargs):
    return subprocess.Popen([sys.executable, "train.py", *args], cwd=REPO_ROOT, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


def run(args, timeout=300):
    process = launch(args)
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output[-4000:]
    return output


def model_state(run_dir):
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    return {k: v for k, v in state.items()}


@pytest.mark.slow
def test_sigkill_mid_training_then_resume_equals_uninterrupted(tiny_run, tmp_path):
    args = [o for o in tiny_run if not o.startswith(("tokens=", "logger="))] + [
        "tokens=25600",  # 100 steps
        "callbacks.model_checkpoint.every_n_train_steps=10", "trainer.val_check_interval=50",
        "data.num_workers=1", "model.dropout=0.1",  # dropout: the RNG state must be restored too
        "logger=wandb", "trainer.log_every_n_steps=5"]
    reference, interrupted = tmp_path / "reference", tmp_path / "interrupted"
    run(args + [f"hydra.run.dir={reference}"])

    killed_at = kill_at_first_checkpoint(args, interrupted)
    assert 0 < killed_at < 100, "the kill must land mid-training"
    assert json.loads((interrupted / "summary.json").read_text())["status"] == "running"
    wandb_id = (interrupted / "wandb_run_id").read_text()

    output = run(args + [f"hydra.run.dir={interrupted}", "ckpt_path=last"])
    assert f"step {killed_at}" in output

    expected, actual = model_state(reference), model_state(interrupted)
    assert expected.keys() == actual.keys()
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], rtol=0, atol=0, msg=name)
    summary = json.loads((interrupted / "summary.json").read_text())
    reference_summary = json.loads((reference / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == 100
    assert summary["val_loss"] == reference_summary["val_loss"]
    assert summary["tokens_seen"] == reference_summary["tokens_seen"]
    assert train_losses(interrupted) == train_losses(reference)  # metrics.csv reads as one run
    assert (interrupted / "wandb_run_id").read_text() == wandb_id
    offline_runs = sorted(p.name for p in (interrupted / "wandb").glob("offline-run-*"))
    assert len(offline_runs) == 2 and all(name.endswith(wandb_id.strip()) for name in offline_runs)


@pytest.mark.slow
def test_two_process_ddp_on_cpu(tiny_run, tmp_path):
    run_dir = tmp_path / "ddp"
    args = [o for o in tiny_run if not o.startswith(("tokens=", "trainer="))]
    run(args + ["trainer=ddp_cpu", "tokens=10240", f"hydra.run.dir={run_dir}"])  # 20 steps of 2 x 8 x 32
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["world_size"] == 2
    assert summary["steps"] == 20 and summary["tokens_seen"] == 20 * 2 * 8 * 32
    steps = [int(r["step"]) for r in csv.DictReader(open(run_dir / "metrics.csv")) if r.get("train/loss")]
    assert len(steps) == len(set(steps)), "one rank writes the metrics"
    samples = (run_dir / "samples.md").read_text()  # appended to: a second writer would repeat sections
    assert samples.count("## step 20") == 1 and samples.count("## step 10") == 1
