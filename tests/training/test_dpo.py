"""DPO through the one training loop: ln 2 at the start, learning on separable pairs, a precomputed reference
equal to a live one, the reference kept on resume (exactly, after SIGKILL; as GRPO's reference and distillation's
teacher are), and the refusals."""

from __future__ import annotations

import csv
import json
import math
import re
import shutil

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from commands import assert_clean_failure, run_main
from compose_train import TRAIN_OVERRIDES, compose_train

from minimind import train as train_app
from minimind.errors import ConfigurationError
from minimind.training.preflight import check_training_config
from minimind.training.run import build_module, train

LN2 = math.log(2)


def dpo_args(init, corpus, tokenizer, *extra):
    """A real DPO run of seconds from `init` (its shape from there): 64-token rows, 10% of the pairs held out."""
    keep = [o for o in TRAIN_OVERRIDES if not o.startswith(("model", "data.seq_len", "trainer.max_steps"))]
    return [*keep, "stage=dpo", f"init_from={init}", f"data.path={corpus}", f"data.tokenizer={tokenizer}",
            "data.seq_len=64", "data.val_fraction=0.1", "trainer.max_steps=6", *extra]


# The one DPO training run the tests share: lr raised so 16 steps show learning; dropout, a loader worker and
# checkpoints every 4 steps so that it is also the uninterrupted run a resume after SIGKILL must equal.
SHARED = ("trainer.max_steps=16", "trainer.val_check_interval=8", "optimizer.lr=1e-3", "model.dropout=0.1",
          "data.num_workers=1", "callbacks.model_checkpoint.every_n_train_steps=4")


@pytest.fixture(scope="module")
def dpo_run(trained_run, tiny_dpo_corpus, tiny_tokenizer_dir, tmp_path_factory):
    """(the run dir, its command-line overrides)."""
    init, _ = trained_run
    run_dir, typed = tmp_path_factory.mktemp("dpo-run"), dpo_args(init, tiny_dpo_corpus, tiny_tokenizer_dir, *SHARED)
    train(compose_train(typed, run_dir=run_dir), typed)
    return run_dir, typed


def metric_rows(run_dir, column):
    with open(run_dir / "metrics.csv", newline="") as f:
        return {int(r["step"]): float(r[column]) for r in csv.DictReader(f) if r.get(column)}


def test_the_loss_starts_at_ln2_with_the_reference_equal_to_the_policy(trained_run, compose_cfg, tiny_dpo_corpus,
                                                                       tiny_tokenizer_dir, tmp_path):
    """A real model and a real batch: equal policy and reference give every reward 0, the loss ln 2, and a gradient
    that raises the chosen reply against the rejected one."""
    run_dir, _ = trained_run
    typed = dpo_args(run_dir, tiny_dpo_corpus, tiny_tokenizer_dir)
    cfg = compose_cfg(typed, run_dir=tmp_path)
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    module = build_module(cfg, check_training_config(cfg, typed), datamodule)
    module.objective.setup(module)
    batch = datamodule.pairs("train").batch(np.arange(4))
    out = module.objective.training_step(module, batch)
    assert out.loss.item() == pytest.approx(LN2, abs=1e-6)
    for name in ("reward_accuracy", "reward_margin", "reward_chosen", "reward_rejected"):
        assert out.metrics[name].item() == 0, name
    assert out.metrics["logps_chosen"] < 0 and out.metrics["logps_rejected"] < 0
    out.loss.backward()
    assert module.model.lm_head.weight.grad.abs().sum() > 0
    assert not any("reference" in key for key in module.state_dict())  # frozen, outside what trains and is saved


def test_reward_accuracy_rises_on_separable_pairs(dpo_run):
    run_dir, _ = dpo_run
    summary = json.loads((run_dir / "summary.json").read_text())
    start, end = summary["val_at_start"], summary["val_at_end"]
    assert start["val/loss"] == pytest.approx(LN2, abs=1e-5) and start["val/reward_accuracy"] == 0
    assert end["val/reward_accuracy"] >= 0.9 and end["val/reward_margin"] > 1 and end["val/loss"] < 0.4, end
    assert summary["stage"] == "dpo" and (run_dir / "dpo_64.pth").is_file()
    accuracy = list(metric_rows(run_dir, "train/reward_accuracy").values())
    assert np.mean(accuracy[-5:]) >= 0.9, accuracy  # (with dropout the policy is not the reference even at step 0)
    val = list(metric_rows(run_dir, "val/reward_accuracy").values())
    assert len(val) == 3 and val[0] == 0 < val[1] <= val[2], val  # validated at the start, at step 8 and 16


def test_a_precomputed_reference_gives_the_live_references_loss(dpo_run, compose_cfg, private_cache, tmp_path):
    live, typed = dpo_run
    precomputed = [*typed, "stage.objective.precompute_ref=true"]
    _, built = train(compose_cfg(precomputed, run_dir=tmp_path / "precomputed"), precomputed)
    assert built["module"].objective.reference.frozen is None  # dropped once its log-probabilities were computed
    tables = [p for p in (private_cache / "ref_logps").iterdir() if p.is_dir()]
    assert len(tables) == 1
    for column in ("train/loss", "train/reward_margin", "val/loss", "val/reward_margin"):
        a, b = metric_rows(live, column), metric_rows(tmp_path / "precomputed", column)
        assert a.keys() == b.keys() and len(a) >= 3, column
        np.testing.assert_allclose(list(b.values()), list(a.values()), rtol=1e-4, atol=1e-5, err_msg=column)
    again = [*precomputed, "trainer.max_steps=1"]  # the same pairs and reference: the table is reused
    train(compose_cfg(again, run_dir=tmp_path / "again"), again)
    assert [p for p in (private_cache / "ref_logps").iterdir() if p.is_dir()] == tables


@pytest.mark.parametrize("stage, role", [("dpo", "reference"), ("grpo", "reference"), ("distill", "teacher")])
def test_a_resumed_run_keeps_its_frozen_model_and_refuses_a_changed_one(stage, role, trained_run, compose_cfg,
                                                                        tiny_dpo_corpus, tiny_prompts, tiny_sft_corpus,
                                                                        tiny_tokenizer_dir, tmp_path):
    """Resuming needs neither init_from=, ref= nor teacher=: the checkpoints record the reference or teacher (its
    file, config and a fingerprint of its weights; the trained model's are the only weights they hold), and weights
    changed since (its run dir trained further) are refused. DPO's reference here is ref=, GRPO's init_from=."""
    from test_grpo import grpo_args
    from test_stages import distill_args

    run_dir, _ = trained_run
    source = shutil.copytree(run_dir, tmp_path / "source")  # a run dir of its own, to train further
    frozen = (source / "checkpoints" / "last.ckpt").resolve()
    first = {"dpo": lambda: dpo_args(run_dir, tiny_dpo_corpus, tiny_tokenizer_dir, f"ref={source}"),
             "grpo": lambda: grpo_args(source, tiny_prompts, tiny_tokenizer_dir),
             "distill": lambda: distill_args(source, tiny_sft_corpus, tiny_tokenizer_dir)}[stage]()
    first = [*first, "trainer.max_steps=3"]
    train(compose_cfg(first, run_dir=tmp_path / "run"), first)
    again = [o for o in first if not o.startswith(("init_from=", "ref=", "teacher=", "trainer.max_steps"))] + [
        "ckpt_path=last", "trainer.max_steps=6"]
    _, built = train(compose_cfg(again, run_dir=tmp_path / "run"), again)
    record = getattr(built["module"].objective, role).record
    assert record["path"] == str(frozen)
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["steps"] == 6
    saved = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert {k for k, v in saved.items() if isinstance(v, torch.Tensor)} == \
        {f"model.{k}" for k in built["module"].model.state_dict()}
    assert saved["objective._extra_state"][role] == record

    trained = torch.load(frozen, weights_only=True)  # its run dir, trained further: other weights in last.ckpt
    trained["state_dict"]["model.lm_head.weight"] += 1e-3
    torch.save(trained, frozen)
    more = [*again[:-1], "trainer.max_steps=9"]
    with pytest.raises(ConfigurationError, match=f"the {role} {re.escape(str(frozen))} has changed since"):
        train(compose_cfg(more, run_dir=tmp_path / "run"), more)


def test_what_dpo_cannot_start_without_is_refused_before_training(trained_run, tiny_dpo_corpus, tiny_tokenizer_dir,
                                                                  tmp_path, capsys, monkeypatch):
    run_dir, _ = trained_run
    args = [o for o in dpo_args(run_dir, tiny_dpo_corpus, tiny_tokenizer_dir) if not o.startswith("init_from=")]
    code, out, err = run_main(train_app.main, [*args, f"hydra.run.dir={tmp_path / 'a'}"], capsys, monkeypatch)
    assert_clean_failure(code, out, err, "measures the policy against a reference model", "init_from=", "ref=PATH")
    pretrain = [o for o in args if not o.startswith("stage=")] + [f"init_from={run_dir}"]
    code, out, err = run_main(train_app.main, [*pretrain, f"hydra.run.dir={tmp_path / 'b'}"], capsys, monkeypatch)
    assert_clean_failure(code, out, err, "holds dpo data, but this stage (CausalLM) trains on pretrain or sft data",
                         "use stage=dpo")
    code, out, err = run_main(train_app.main, ["experiment=quickstart_dpo", f"hydra.run.dir={tmp_path / 'c'}"],
                              capsys, monkeypatch)
    assert_clean_failure(code, out, err, "cannot start training", "init_from= is required")
    code, out, err = run_main(train_app.main, [*args, f"init_from={run_dir}", "stage.objective.beta=0",
                                               f"hydra.run.dir={tmp_path / 'd'}"], capsys, monkeypatch)
    assert_clean_failure(code, out, err, "stage.objective.beta=0 must be > 0")


@pytest.mark.slow
def test_sigkill_mid_dpo_then_resume_equals_uninterrupted(dpo_run, tmp_path):
    """`python train.py` killed at its first checkpoint, then resumed (no init_from=: the reference comes from
    the checkpoint), ends exactly as the shared run that was never interrupted."""
    from commands import assert_resumed_as_uninterrupted, kill_at_first_checkpoint
    from test_resume_and_ddp import run

    reference, args = dpo_run
    interrupted = tmp_path / "interrupted"
    killed_at = kill_at_first_checkpoint(args, interrupted, timeout=180)
    assert 0 < killed_at < 16, "the kill must land mid-training"

    resume = [o for o in args if not o.startswith("init_from=")]
    run(resume + [f"hydra.run.dir={interrupted}", "ckpt_path=last"])
    assert_resumed_as_uninterrupted(interrupted, reference)  # the reference's record among the state
    summaries = [json.loads((d / "summary.json").read_text()) for d in (interrupted, reference)]
    assert summaries[0]["val_at_start"] == summaries[1]["val_at_start"]
