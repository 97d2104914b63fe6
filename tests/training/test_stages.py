"""Stages after pretraining, through the one training loop: init_from= and distillation.

(LoRA, SFT rendering and packing have tests of their own.)
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from hydra.utils import instantiate

from commands import assert_clean_failure, run_main
from compose_train import TRAIN_OVERRIDES

from minimind import train as train_app
from minimind.checkpoints import load_checkpoint
from minimind.evaluate import evaluate
from minimind.export import export_hf
from minimind.data import load_tokenizer
from minimind.errors import ConfigurationError
from minimind.training.preflight import check_training_config
from minimind.training.run import build_module, train


def weights_of(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def sources(trained_run, tiny_tokenizer_dir, tmp_path_factory):
    """The trained run as every kind of init_from source: run dir, .ckpt, upstream .pth, Hugging Face dir."""
    run_dir, _ = trained_run
    hf_dir = tmp_path_factory.mktemp("hf") / "model"
    loaded = load_checkpoint(run_dir)
    export_hf(loaded.model, load_tokenizer(tiny_tokenizer_dir), hf_dir)
    return {"run dir": run_dir, ".ckpt": run_dir / "checkpoints" / "last.ckpt",
            "upstream .pth": run_dir / "pretrain_64.pth", "Hugging Face dir": hf_dir}


def data_args(tiny_corpus, tiny_tokenizer_dir):
    return [f"data.path={tiny_corpus}", f"data.tokenizer={tiny_tokenizer_dir}"]


@pytest.mark.parametrize("kind", ["run dir", ".ckpt", "upstream .pth", "Hugging Face dir"])
def test_init_from_each_source_gives_its_weights_and_its_validation_loss(kind, sources, trained_run, compose_cfg,
                                                                          tiny_corpus, tiny_tokenizer_dir, tmp_path):
    """The model starts with exactly the source's weights, so it starts at the source's validation loss.
    No model override is typed: the shape comes from the source (a .pth: its run's config.yaml)."""
    run_dir, metrics = trained_run
    typed = [f"init_from={sources[kind]}"]
    cfg = compose_cfg([o for o in TRAIN_OVERRIDES if not o.startswith("model")] + typed
                      + data_args(tiny_corpus, tiny_tokenizer_dir), run_dir=tmp_path)
    plan = check_training_config(cfg, typed)
    datamodule = instantiate(cfg.data)
    module = build_module(cfg, plan, datamodule)
    source = load_checkpoint(sources[kind])  # what the source holds (the .pth: its fp16-rounded weights)
    expected = weights_of(source.model)
    assert weights_of(module.model).keys() == expected.keys()
    for name, tensor in weights_of(module.model).items():
        torch.testing.assert_close(tensor, expected[name], rtol=0, atol=0, msg=name)
    val = evaluate(module.model, datamodule, "val", limit_batches=3)["loss"]
    if kind == "upstream .pth":  # fp16-rounded weights: close to the run's, exactly the file's own
        assert val == pytest.approx(evaluate(source.model, datamodule, "val", limit_batches=3)["loss"], abs=1e-6)
        assert val == pytest.approx(metrics["val/loss"], abs=1e-2)
    else:
        assert val == pytest.approx(metrics["val/loss"], abs=1e-5)


def test_sft_from_a_pretraining_run_records_its_source_and_writes_upstreams_file(
        trained_run, compose_cfg, tiny_sft_corpus, tiny_tokenizer_dir, tmp_path):
    run_dir, _ = trained_run
    typed = [f"init_from={run_dir}", "stage=sft", "trainer.max_steps=6", "trainer.val_check_interval=3",
             "data.seq_len=128"]
    cfg = compose_cfg([o for o in TRAIN_OVERRIDES if not o.startswith(("model", "trainer.max_steps", "data.seq_len",
                                                                        "trainer.val_check_interval"))]
                      + typed + data_args(tiny_sft_corpus, tiny_tokenizer_dir), run_dir=tmp_path)
    metrics, built = train(cfg, typed)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["stage"] == "full_sft"
    assert summary["init_from"] == str(run_dir) and summary["steps"] == 6
    assert (tmp_path / "full_sft_64.pth").is_file()
    assert built["datamodule"].format == "sft" and math.isfinite(metrics["val/loss"])
    # The run's config.yaml records the model it trained (the source's), so the tools load it as it is.
    assert load_checkpoint(tmp_path).config.hidden_size == 64


@pytest.mark.parametrize("typed, fragments", [
    (["model.hidden_size=32"], ["does not fit the chosen model config", "shape mismatches",
                                "the model's shape comes from init_from="]),
    (["ckpt_path=last"], ["ckpt_path=last and init_from=", "to resume, drop init_from="]),
])
def test_init_from_refuses_what_cannot_fit(typed, fragments, trained_run, tiny_corpus, tiny_tokenizer_dir, tmp_path,
                                           capsys, monkeypatch):
    run_dir, _ = trained_run
    args = [o for o in TRAIN_OVERRIDES if not o.startswith("model")] + data_args(tiny_corpus, tiny_tokenizer_dir)
    code, out, err = run_main(train_app.main, [*args, f"init_from={run_dir}", *typed,
                                               f"hydra.run.dir={tmp_path / 'run'}"], capsys, monkeypatch)
    assert_clean_failure(code, out, err, *fragments)


def test_typed_model_settings_apply_on_top_of_the_source(trained_run, compose_cfg, tmp_path):
    run_dir, _ = trained_run
    typed = [f"init_from={run_dir}", "model.dropout=0.1", "attention/backend=eager", "data.seq_len=32"]
    plan = check_training_config(compose_cfg(typed, run_dir=tmp_path), typed)
    assert plan.model_config.dropout == 0.1 and plan.model_config.attn_implementation == "eager"
    assert plan.model_config.hidden_size == 64  # the source's, not the default preset's 512
    with pytest.raises(ConfigurationError, match="does not fit"):
        check_training_config(compose_cfg(typed + ["model=small"], run_dir=tmp_path), typed + ["model=small"])


def distill_args(teacher, tiny_sft_corpus, tiny_tokenizer_dir, *extra):
    return [o for o in TRAIN_OVERRIDES if not o.startswith(("model.hidden_size", "model.intermediate_size",
                                                            "trainer.max_steps", "optimizer.lr", "data.seq_len"))] + [
        "stage=distill", f"teacher={teacher}", "model.hidden_size=32", "model.intermediate_size=64",
        "trainer.max_steps=8", "optimizer.lr=3e-3", "callbacks.samples=null", "data.seq_len=128",
        *data_args(tiny_sft_corpus, tiny_tokenizer_dir), *extra]


def test_distillation_with_alpha_one_is_sft(trained_run, compose_cfg, tiny_sft_corpus, tiny_tokenizer_dir, tmp_path):
    run_dir, _ = trained_run
    distilled = distill_args(run_dir, tiny_sft_corpus, tiny_tokenizer_dir, "stage.objective.alpha=1.0")
    sft = [o for o in distilled if not o.startswith(("stage=", "teacher=", "stage.objective"))] + [
        "stage=sft", "optimizer.lr=3e-3"]
    _, a = train(compose_cfg(distilled, run_dir=tmp_path / "distill"), distilled)
    _, b = train(compose_cfg(sft, run_dir=tmp_path / "sft"), sft)
    for name, tensor in weights_of(a["module"].model).items():
        torch.testing.assert_close(tensor, weights_of(b["module"].model)[name], rtol=0, atol=0, msg=name)
    rows = [r for r in (tmp_path / "distill" / "metrics.csv").read_text().splitlines()]
    assert "train/kl" in rows[0] and "val/kl" in rows[0]  # the teacher was consulted and its KL logged


def test_distillation_pulls_the_student_towards_the_teacher(trained_run, compose_cfg, tiny_sft_corpus,
                                                           tiny_tokenizer_dir, tmp_path):
    import csv

    run_dir, _ = trained_run
    typed = distill_args(run_dir, tiny_sft_corpus, tiny_tokenizer_dir, "stage.objective.alpha=0.0",
                         "trainer.max_steps=24", "trainer.val_check_interval=4", "scheduler=constant")
    train(compose_cfg(typed, run_dir=tmp_path), typed)
    with open(tmp_path / "metrics.csv", newline="") as f:
        kl = [float(r["val/kl"]) for r in csv.DictReader(f) if r.get("val/kl")]
    assert len(kl) == 6 and kl[-1] < 0.8 * kl[0], kl


def test_a_teacher_with_another_tokenizer_is_refused(trained_run, tiny_sft_corpus, tmp_path, capsys, monkeypatch):
    run_dir, _ = trained_run
    args = [o for o in distill_args(run_dir, tiny_sft_corpus, "default") if not o.startswith("model.vocab_size")]
    code, out, err = run_main(train_app.main, [*args, "model.vocab_size=6400", f"hydra.run.dir={tmp_path}"],
                              capsys, monkeypatch)
    assert_clean_failure(code, out, err, "was trained with another tokenizer", "data.tokenizer=<the teacher's>")


def test_distillation_needs_a_teacher(compose_cfg, tmp_path):
    with pytest.raises(ConfigurationError, match="stage=distill needs a teacher: give teacher=PATH"):
        check_training_config(compose_cfg(["stage=distill"], run_dir=tmp_path), ["stage=distill"])


def test_a_resumed_run_keeps_the_model_of_its_checkpoint(trained_run, compose_cfg, tiny_sft_corpus, tiny_tokenizer_dir,
                                                         tmp_path):
    """`ckpt_path=last` needs neither init_from= nor the model retyped: the checkpoint holds the model's config."""
    run_dir, _ = trained_run
    common = [o for o in TRAIN_OVERRIDES if not o.startswith(("model", "trainer.max_steps", "data.seq_len"))] + [
        "stage=sft", "data.seq_len=128", *data_args(tiny_sft_corpus, tiny_tokenizer_dir)]
    first = common + [f"init_from={run_dir}", "trainer.max_steps=3"]
    train(compose_cfg(first, run_dir=tmp_path), first)
    again = common + ["ckpt_path=last", "trainer.max_steps=6"]
    _, built = train(compose_cfg(again, run_dir=tmp_path), again)
    assert built["module"].config.hidden_size == 64  # the checkpoint's, not the default preset's 512
    assert json.loads((tmp_path / "summary.json").read_text())["steps"] == 6


@pytest.mark.slow
def test_sigkill_mid_distillation_then_resume_equals_uninterrupted(trained_run, compose_cfg, tiny_sft_corpus,
                                                                   tiny_tokenizer_dir, tmp_path):
    """`python train.py stage=distill` killed at its first checkpoint, then resumed (no teacher=: the checkpoint
    records it, as DPO's records its reference), ends exactly as a run that was never interrupted."""
    from commands import assert_resumed_as_uninterrupted, kill_at_first_checkpoint

    teacher, _ = trained_run
    args = distill_args(teacher, tiny_sft_corpus, tiny_tokenizer_dir, "trainer.max_steps=12",
                        "trainer.val_check_interval=6", "model.dropout=0.1", "data.num_workers=1",
                        "callbacks.model_checkpoint.every_n_train_steps=4")
    reference, interrupted = tmp_path / "reference", tmp_path / "interrupted"
    train(compose_cfg(args, run_dir=reference), args)
    killed_at = kill_at_first_checkpoint(args, interrupted)
    assert 0 < killed_at < 12, "the kill must land mid-training"

    resume = [o for o in args if not o.startswith("teacher=")] + ["ckpt_path=last"]
    train(compose_cfg(resume, run_dir=interrupted), resume)
    assert_resumed_as_uninterrupted(interrupted, reference)  # the teacher's record among the state
