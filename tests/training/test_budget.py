"""The run's length: what the user typed wins over the files they chose, which win over the default.

Exactly one of `tokens`, `trainer.max_steps`, `trainer.max_epochs` decides; two at the same level
(both typed, or both in the chosen files) are refused; summary.json records which one decided.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from omegaconf import open_dict

from commands import assert_clean_error, run_train
from minimind.errors import ConfigurationError
from minimind.hardware import SLOW_CPU_PRECISION, cpu_slowdown
from minimind.training.budget import plan_budget
from minimind.training.run import train

QUICKSTART_STEP = 16 * 256  # experiment=quickstart: data.batch_size x data.seq_len


def budget(compose_cfg, overrides, files=None):
    """Plan the budget of `overrides` as typed; `files` are values set as if by a chosen config file."""
    cfg = compose_cfg(overrides)
    with open_dict(cfg):
        for key, value in (files or {}).items():
            node, _, leaf = key.rpartition(".")
            (cfg if not node else cfg[node])[leaf] = value
    return plan_budget(cfg, overrides, world=1)


def test_nothing_given_trains_on_the_default_budget(compose_cfg):
    plan = budget(compose_cfg, [])
    assert plan.length_from == "default_tokens" and plan.tokens == 50_000_000
    assert plan.max_steps == math.ceil(50_000_000 / (32 * 512))


def test_an_experiments_tokens_decide_until_the_user_types_a_length(compose_cfg):
    plan = budget(compose_cfg, ["experiment=quickstart"])
    assert (plan.length_from, plan.max_steps) == ("tokens", math.ceil(2_000_000 / QUICKSTART_STEP))
    typed = budget(compose_cfg, ["experiment=quickstart", "trainer.max_steps=5"])
    assert (typed.length_from, typed.max_steps, typed.max_epochs) == ("trainer.max_steps", 5, -1)
    epochs = budget(compose_cfg, ["experiment=quickstart", "trainer.max_epochs=2"])
    assert (epochs.length_from, epochs.max_steps, epochs.max_epochs) == ("trainer.max_epochs", -1, 2)
    tokens = budget(compose_cfg, ["experiment=quickstart", "tokens=1e5"])
    assert (tokens.length_from, tokens.max_steps) == ("tokens", math.ceil(1e5 / QUICKSTART_STEP))


def test_a_typed_length_beats_a_files_other_length(compose_cfg):
    plan = budget(compose_cfg, ["tokens=40960"], files={"trainer.max_steps": 7})
    assert (plan.length_from, plan.max_steps) == ("tokens", 40960 // (32 * 512) + 1)


def test_two_lengths_at_the_same_level_are_refused(compose_cfg):
    with pytest.raises(ConfigurationError, match="tokens and trainer.max_steps were both given on the command line"):
        budget(compose_cfg, ["tokens=40960", "trainer.max_steps=2"])
    with pytest.raises(ConfigurationError, match="the chosen config files set both tokens and trainer.max_steps"):
        budget(compose_cfg, ["experiment=quickstart"], files={"trainer.max_steps": 7})


def test_tokens_per_step_counts_every_rank_and_accumulation(compose_cfg):
    cfg = compose_cfg(["tokens=1_000_000", "trainer.accumulate_grad_batches=4"])
    plan = plan_budget(cfg, ["tokens=1_000_000"], world=8)
    assert plan.tokens_per_step == 32 * 512 * 4 * 8 and plan.max_steps == math.ceil(1e6 / plan.tokens_per_step)


def test_an_experiment_run_stops_at_the_typed_max_steps(compose_cfg, tiny_corpus, tiny_tokenizer_dir, tmp_path):
    typed = ["experiment=quickstart", "trainer.max_steps=3", "logger=csv", "callbacks.samples=null",
             f"data.path={tiny_corpus}", f"data.tokenizer={tiny_tokenizer_dir}", "data.seq_len=32", "data.batch_size=4",
             "data.num_workers=0", "trainer.enable_progress_bar=false"]
    train(compose_cfg(typed, run_dir=tmp_path), typed)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["steps"] == 3 and summary["length_from"] == "trainer.max_steps" and summary["max_steps"] == 3


@pytest.mark.slow
def test_the_design_cards_command_with_max_steps_stops_after_two_steps(tmp_path):
    """`python train.py model=small trainer.precision=bf16 trainer.max_steps=2`, on the embedded corpus
    (smaller batches so that it takes seconds on a CPU)."""
    proc = run_train("model=small", "trainer.precision=bf16", "trainer.max_steps=2", "data.batch_size=2",
                     "data.seq_len=64", "trainer.limit_val_batches=2", "logger=csv", "callbacks.samples=null",
                     "export_pth=false", f"hydra.run.dir={tmp_path}", timeout=600)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == 2
    assert summary["length_from"] == "trainer.max_steps" and summary["precision"] == "bf16-mixed"
    # A CPU without bf16 units (this machine's kind: ~90x slower bf16 matmuls) is called out; one with them is not.
    threads = torch.get_num_threads()
    torch.set_num_threads(summary["cpu_threads"])  # the run's measurement (the shared cache), not a new one
    try:
        slow = cpu_slowdown(torch.bfloat16) > SLOW_CPU_PRECISION
    finally:
        torch.set_num_threads(threads)
    warned = "trainer.precision=bf16-mixed on this CPU: its bfloat16 matmuls measured" in proc.stdout + proc.stderr
    assert warned == slow, (slow, proc.stderr[-2000:])


@pytest.mark.slow
def test_a_sweep_stops_each_job_at_the_typed_max_steps(tiny_corpus, tiny_tokenizer_dir, tmp_path):
    """`python train.py -m sweep=size experiment=quickstart trainer.max_steps=2`, its grid narrowed to two jobs."""
    run_train("-m", "sweep=size", "experiment=quickstart", "trainer.max_steps=2", "sweep_grid.cpu.hidden_size=64",
              "sweep_grid.cpu.num_hidden_layers='1,2'", "logger=csv", "callbacks.samples=null", "export_pth=false",
              f"data.path={tiny_corpus}", f"data.tokenizer={tiny_tokenizer_dir}", "data.seq_len=32",
              "data.num_workers=0", "trainer.enable_progress_bar=false", f"hydra.sweep.dir={tmp_path}", timeout=600)
    jobs = sorted(p for p in tmp_path.iterdir() if (p / "summary.json").is_file())
    assert len(jobs) == 2
    for job in jobs:
        summary = json.loads((job / "summary.json").read_text())
        assert summary["status"] == "completed" and summary["steps"] == 2, summary
        assert summary["length_from"] == "trainer.max_steps"


def test_a_users_own_experiment_file_is_found_and_its_contradiction_refused(tiny_corpus, tiny_tokenizer_dir,
                                                                              tmp_path):
    """`--config-dir` adds the user's config files; an experiment that sets two lengths is refused."""
    conf = tmp_path / "my_conf" / "experiment"
    conf.mkdir(parents=True)
    (conf / "both.yaml").write_text("# @package _global_\ntokens: 100000\ntrainer:\n  max_steps: 5\n")
    proc = run_train("--config-dir", str(tmp_path / "my_conf"), "experiment=both", f"data.path={tiny_corpus}",
                     f"data.tokenizer={tiny_tokenizer_dir}", "logger=csv", f"hydra.run.dir={tmp_path / 'run'}",
                     check=False, timeout=300)
    assert_clean_error(proc, "the chosen config files set both tokens and trainer.max_steps")
