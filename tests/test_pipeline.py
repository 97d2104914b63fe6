"""`python -m minimind.pipeline`: stages in order, each from the previous one's weights; a killed pipeline,
rerun, ends where an uninterrupted one ends, bit for bit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from commands import run_module
from compose_train import REPO_ROOT, TRAIN_OVERRIDES

SHARED = [o for o in TRAIN_OVERRIDES if not o.startswith(("trainer.max_steps", "trainer.val_check_interval",
                                                          "data.seq_len"))] + [
    "trainer.max_steps=24", "trainer.val_check_interval=12", "data.seq_len=128",
    "callbacks.model_checkpoint.every_n_train_steps=4", "model.dropout=0.1"]


def pipeline_args(out, corpus, sft, tokenizer):
    return [f"out={out}", "experiment=null", "stages=[pretrain,sft]", "max_new_tokens=6", *SHARED,
            f"data.tokenizer={tokenizer}", f"pretrain:data.path={corpus}", f"sft:data.path={sft}"]


def final_weights(out):
    return torch.load(out / "2-sft" / "full_sft_64.pth", weights_only=True)


@pytest.mark.slow
def test_killed_pipeline_reruns_to_the_same_weights(tiny_corpus, tiny_sft_corpus, tiny_tokenizer_dir, tmp_path):
    reference = tmp_path / "reference"
    run_module("minimind.pipeline", *pipeline_args(reference, tiny_corpus, tiny_sft_corpus, tiny_tokenizer_dir),
               timeout=900)
    report = (reference / "report.md").read_text()
    assert "| pretrain | `1-pretrain` | completed | 24 |" in report and "| sft | `2-sft` | completed | 24 |" in report
    assert "What does shlex.quote do?" in report
    assert json.loads((reference / "2-sft" / "summary.json").read_text())["init_from"] == str(reference / "1-pretrain")

    interrupted = tmp_path / "interrupted"
    args = pipeline_args(interrupted, tiny_corpus, tiny_sft_corpus, tiny_tokenizer_dir)
    process = subprocess.Popen([sys.executable, "-m", "minimind.pipeline", *args], cwd=REPO_ROOT,
                               start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = interrupted / "2-sft" / "checkpoints" / "last.ckpt"
    deadline = time.time() + 600
    while not checkpoint.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # the pipeline and its stage, mid-SFT
    process.wait()
    assert json.loads((interrupted / "2-sft" / "summary.json").read_text())["status"] == "running"
    finished_at = json.loads((interrupted / "1-pretrain" / "summary.json").read_text())["finished_at"]

    output = run_module("minimind.pipeline", *args, timeout=900).stdout
    assert "stage pretrain: completed earlier" in output and "ckpt_path=last" in output
    assert json.loads((interrupted / "1-pretrain" / "summary.json").read_text())["finished_at"] == finished_at
    expected, actual = final_weights(reference), final_weights(interrupted)
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], rtol=0, atol=0, msg=name)


def test_stage_arguments_are_split_from_the_pipelines_own():
    from minimind.pipeline import split_arguments

    own, passed = split_arguments(["out=x", "stages=[sft]", "trainer.max_steps=5", "sft:data.path=a.jsonl",
                                   "hydra.verbose=true", "--config-dir", "my_conf", "experiment=quickstart"])
    assert own == ["out=x", "stages=[sft]", "hydra.verbose=true", "--config-dir", "my_conf"]
    assert passed == {"experiment": "quickstart", "*": ["trainer.max_steps=5"], "sft": ["data.path=a.jsonl"]}


def test_each_stage_runs_its_experiment_file_where_one_exists(compose_cfg):
    from minimind.pipeline import stage_experiment

    assert stage_experiment("quickstart", "pretrain") == ["experiment=quickstart_pretrain"]
    assert stage_experiment("quickstart", "grpo") == ["experiment=quickstart_grpo"]
    assert stage_experiment("quickstart", "distill") == ["experiment=quickstart", "stage=distill"]
    assert stage_experiment(None, "sft") == ["stage=sft"]
    make_train = compose_cfg(["experiment=quickstart"])
    first_stage = compose_cfg(stage_experiment("quickstart", "pretrain"))  # make train's run, on half the tokens
    assert (make_train.tokens, first_stage.tokens) == (2_000_000, 1_000_000)
    first_stage.tokens = make_train.tokens
    assert first_stage == make_train
