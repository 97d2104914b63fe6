"""stage=lora: adapters trained on a frozen base with the real Trainer, checkpoints that hold only the
adapters, every tool seeing base + adapter, exact resume after SIGKILL, and clear refusals."""

import json

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from transformers import AutoModelForCausalLM

from commands import assert_clean_failure, kill_at_first_checkpoint, run_main, run_train, train_losses
from compose_train import TRAIN_OVERRIDES, compose_train
from data.helpers import make_conversations, write_jsonl
from minimind.checkpoints import CheckpointError, load_checkpoint
from minimind.checkpoints.files import lightning_state
from minimind.checkpoints.lora import read_adapter
from minimind.errors import ConfigurationError
from minimind.training.preflight import check_training_config
from minimind.training.run import build_module, train

TOKENS = torch.randint(3, 400, (2, 24), generator=torch.Generator().manual_seed(5))
ADAPTED = [f"model.layers.{i}.self_attn.{p}" for i in range(2) for p in ("q_proj", "o_proj")]  # GQA: square ones
# The model comes from the base (init_from=); SFT conversations need longer rows than pretraining's 32 tokens.
LORA_OVERRIDES = [o for o in TRAIN_OVERRIDES if not o.startswith(("model", "optimizer.lr", "data.seq_len"))] + [
    "stage=lora", "optimizer.lr=1e-2", "data.seq_len=96"]


@pytest.fixture(scope="module")
def sft_data(tmp_path_factory):
    return write_jsonl(tmp_path_factory.mktemp("sft") / "sft.jsonl",
                       [{"conversations": c} for c in make_conversations(300)])


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, trained_run, sft_data, tiny_tokenizer_dir):
    """A 12-step LoRA run on the pretraining run `trained_run`: (run dir, metrics, module, base dir)."""
    base_dir, _ = trained_run
    run_dir = tmp_path_factory.mktemp("lora-run")
    overrides = LORA_OVERRIDES + [f"init_from={base_dir}", f"data.path={sft_data}", f"data.tokenizer={tiny_tokenizer_dir}"]
    metrics, built = train(compose_train(overrides, run_dir=run_dir), overrides)
    return run_dir, metrics, built["module"], base_dir


def checkpoint_weights(path):
    return lightning_state(torch.load(path, weights_only=True), path)[1]


def logits(model):
    with torch.no_grad():
        return model.eval()(TOKENS).logits


def test_only_the_adapters_train_and_checkpoints_hold_only_them(lora_run):
    run_dir, metrics, module, base_dir = lora_run
    base = checkpoint_weights(base_dir / "checkpoints" / "last.ckpt")
    trained = module.model.state_dict()
    adapters = {k for k in trained if ".lora." in k}
    assert adapters == {f"{m}.lora.{ab}.weight" for m in ADAPTED for ab in "AB"}
    for name, value in base.items():  # the base, bit for bit, after training
        assert torch.equal(trained[name], value), name
    assert all(trained[f"{m}.lora.B.weight"].abs().sum() > 0 for m in ADAPTED)  # B left zero: it trained

    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert set(checkpoint["state_dict"]) == {f"model.{k}" for k in adapters}  # no second copy of the base
    assert len(checkpoint["optimizer_states"][0]["state"]) == len(adapters)  # the optimizer saw only them
    recorded = checkpoint["hyper_parameters"]["lora"]
    assert recorded["base"] == str((base_dir / "checkpoints" / "last.ckpt").resolve())
    assert (recorded["rank"], recorded["alpha"], recorded["targets"]) == (16, None, ["square"])

    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["stage"] == "lora_medical"
    assert summary["trainable_params"] == len(ADAPTED) * 2 * 64 * 16
    assert summary["params"] == module.model.num_parameters() == summary["trainable_params"] + sum(
        v.numel() for k, v in base.items() if k != "lm_head.weight")  # tied: the embedding counts once
    assert OmegaConf.load(run_dir / "config.yaml").init_from == recorded["base"]
    adapter = torch.load(run_dir / "lora_medical_64.pth", weights_only=True)  # upstream's name and format
    assert set(adapter) == adapters and all(v.dtype == torch.float16 for v in adapter.values())
    losses = list(train_losses(run_dir).values())
    assert sum(losses[-3:]) < sum(losses[:3]), losses


def test_every_tool_sees_base_plus_adapter(lora_run, tmp_path, capsys, monkeypatch):
    from minimind import export, generate

    run_dir, _, module, base_dir = lora_run
    adapted = logits(module.model)
    loaded = load_checkpoint(run_dir)  # what generate, evaluate, export and inspect load
    assert "LoRA adapters merged" in loaded.config_source
    assert not any(".lora." in k for k in loaded.model.state_dict())
    torch.testing.assert_close(logits(loaded.model), adapted, rtol=0, atol=1e-5)
    assert torch.equal(logits(load_checkpoint(run_dir / "checkpoints" / "last.ckpt").model), logits(loaded.model))
    # base + the adapter file the run wrote (fp16, so up to its rounding)
    from_file = load_checkpoint(base_dir, lora=run_dir / "lora_medical_64.pth")
    torch.testing.assert_close(logits(from_file.model), adapted, rtol=0, atol=1e-3)

    code, out, err = run_main(export.main, [f"ckpt={run_dir}", "format=hf", f"out={tmp_path / 'hf'}"], capsys, monkeypatch)
    assert code == 0, err
    hf = AutoModelForCausalLM.from_pretrained(tmp_path / "hf")
    torch.testing.assert_close(logits(hf), adapted, rtol=0, atol=1e-5)
    code, out, err = run_main(export.main, [f"ckpt={run_dir}", "format=minimind", f"out={tmp_path / 'pth'}"],
                              capsys, monkeypatch)
    assert code == 0, err
    exported = torch.load(tmp_path / "pth" / "pretrain_64.pth", weights_only=True)  # merged, fp16 as upstream
    assert {k: v.half() for k, v in loaded.model.state_dict().items()}.keys() == exported.keys()
    assert all(torch.equal(v.half(), exported[k]) for k, v in loaded.model.state_dict().items())

    code, out, err = run_main(generate.main, [f"ckpt={run_dir}", "prompt=Question 3:", "temperature=0",
                                              "max_new_tokens=6"], capsys, monkeypatch)
    assert code == 0 and "LoRA adapters merged" in err, err


def test_init_from_a_lora_run_starts_from_base_plus_adapter(lora_run, sft_data, tiny_tokenizer_dir, tmp_path):
    run_dir, _, module, _ = lora_run
    overrides = [o for o in LORA_OVERRIDES if o != "stage=lora"] + [
        "stage=sft", f"init_from={run_dir}", f"data.path={sft_data}", f"data.tokenizer={tiny_tokenizer_dir}"]
    cfg = compose_train(overrides, run_dir=tmp_path)
    plan = check_training_config(cfg, overrides)
    started = build_module(cfg, plan, instantiate(cfg.data))
    assert plan.lora is None and all(p.requires_grad for p in started.model.parameters())  # SFT trains it all
    torch.testing.assert_close(logits(started.model), logits(module.model), rtol=0, atol=1e-5)


def test_a_base_that_changed_or_vanished_is_refused(lora_run, tmp_path):
    """The checkpoint records its base and a fingerprint of its weights: other weights are never merged silently."""
    run_dir, _, module, base_dir = lora_run
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    base = torch.load(base_dir / "checkpoints" / "last.ckpt", weights_only=True)
    base["state_dict"]["model.model.norm.weight"] = base["state_dict"]["model.model.norm.weight"] + 1e-3
    torch.save(base, tmp_path / "base.ckpt")
    checkpoint["hyper_parameters"]["lora"]["base"] = str(tmp_path / "base.ckpt")
    torch.save(checkpoint, tmp_path / "lora.ckpt")
    with pytest.raises(CheckpointError, match="are not those .* or merge the adapters into a base of your choice: "
                                              "ckpt=BASE lora="):
        load_checkpoint(tmp_path / "lora.ckpt")
    (tmp_path / "base.ckpt").unlink()
    with pytest.raises(CheckpointError, match="which does not exist"):
        load_checkpoint(tmp_path / "lora.ckpt")
    # The way out it names: the adapters of that checkpoint on a base chosen explicitly.
    chosen = load_checkpoint(base_dir, lora=tmp_path / "lora.ckpt")
    torch.testing.assert_close(logits(chosen.model), logits(module.model), rtol=0, atol=1e-5)


def test_impossible_lora_runs_are_refused_before_data(lora_run, trained_run, sft_data, tmp_path, capsys, monkeypatch):
    from minimind import train as train_app

    run_dir, _, _, base_dir = lora_run
    data = [f"data.path={sft_data}"]
    code, out, err = run_main(train_app.main, [*LORA_OVERRIDES, *data, f"hydra.run.dir={tmp_path / 'x'}"],
                              capsys, monkeypatch)
    assert_clean_failure(code, out, err, "stage=lora trains adapters on trained weights: give the base as init_from=")

    def problems(*extra):
        overrides = [*LORA_OVERRIDES, *data, *extra]
        with pytest.raises(ConfigurationError) as error:
            check_training_config(compose_train(overrides, run_dir=tmp_path / "run"), overrides)
        return str(error.value)

    last = run_dir / "checkpoints" / "last.ckpt"
    assert "'*.qproj' matches no linear layer" in problems(f"init_from={base_dir}", "stage.lora.targets=[square,'*.qproj']")
    assert "stage.lora.rank=16; this run says rank=8: a resumed run keeps its adapters" in problems(
        f"init_from={base_dir}", f"ckpt_path={last}", "stage.lora.rank=8")
    # the base's fp16 export holds other bytes than the fp32 checkpoint the run was trained on
    assert f"ckpt_path={last} holds LoRA adapters trained on the base {base_dir / 'checkpoints' / 'last.ckpt'}, " \
        f"and the weights in {base_dir / 'pretrain_64.pth'} are not those" in problems(
            f"init_from={base_dir / 'pretrain_64.pth'}", f"ckpt_path={last}")
    assert "is a LoRA run's checkpoint (adapters only): resume it with stage=lora" in problems(
        "stage=pretrain", f"ckpt_path={last}")
    assert "is not a LoRA run's checkpoint: to train adapters on its weights, start a new run with init_from=" in \
        problems(f"init_from={base_dir}", f"ckpt_path={base_dir / 'checkpoints' / 'last.ckpt'}")


def test_quickstart_lora_adapts_the_quickstart_model_on_the_embedded_conversations(trained_run, tmp_path):
    base_dir, _ = trained_run
    overrides = ["experiment=quickstart_lora", f"init_from={base_dir}"]
    cfg = compose_train(overrides, run_dir=tmp_path)
    plan = check_training_config(cfg, overrides)
    assert (cfg.data.path, cfg.data.format, cfg.stage.name) == ("default", "sft", "lora_medical")
    assert plan.lora is not None and plan.lora.config.rank == 16 and plan.lora.config.targets == ("square",)


# --- resume ------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_sigkill_then_resume_equals_uninterrupted(trained_run, sft_data, tiny_run, tmp_path):
    base_dir, _ = trained_run
    args = [o for o in tiny_run if not o.startswith(("model", "tokens=", "data.seq_len", "optimizer.lr",
                                                     "trainer.val_check_interval"))] + [
        "stage=lora", f"init_from={base_dir}", f"data.path={sft_data}", "data.seq_len=96", "trainer.max_steps=60",
        "optimizer.lr=1e-2", "stage.lora.dropout=0.1",  # dropout: the RNG state must be restored too
        "callbacks.model_checkpoint.every_n_train_steps=5", "trainer.val_check_interval=30", "data.num_workers=1"]
    reference, interrupted = tmp_path / "reference", tmp_path / "interrupted"
    run_train(*args, f"hydra.run.dir={reference}")
    killed_at = kill_at_first_checkpoint(args, interrupted)
    assert 0 < killed_at < 60, "the kill must land mid-training"

    # Resumed without init_from=: the base its checkpoint records is read again (and checked).
    resumed = run_train(*[a for a in args if not a.startswith("init_from=")], f"hydra.run.dir={interrupted}",
                        "ckpt_path=last")
    assert f"step {killed_at}" in resumed.stdout + resumed.stderr
    expected = checkpoint_weights(reference / "checkpoints" / "last.ckpt")
    actual = checkpoint_weights(interrupted / "checkpoints" / "last.ckpt")
    assert expected.keys() == actual.keys() and all(".lora." in k for k in expected)
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], rtol=0, atol=0, msg=name)
    summary, reference_summary = (json.loads((d / "summary.json").read_text()) for d in (interrupted, reference))
    assert summary["status"] == "completed" and summary["steps"] == 60
    assert summary["val_loss"] == reference_summary["val_loss"]
    assert summary["init_from"] == reference_summary["init_from"] == str(base_dir / "checkpoints" / "last.ckpt")
    assert train_losses(interrupted) == train_losses(reference)
    written, reference_written = (read_adapter(d / "lora_medical_64.pth").state for d in (interrupted, reference))
    assert written.keys() == reference_written.keys()
    assert all(torch.equal(written[k], reference_written[k]) for k in written)
