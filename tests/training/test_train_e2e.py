"""Real training runs on CPU: what a run dir holds, that loss falls, and failures are recorded."""

import csv
import json

import pytest
import torch

from minimind.model import MiniMindConfig, MiniMindForCausalLM
from minimind.training.run import train


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_run_dir_holds_every_output(compose_cfg, tiny_run, tmp_path):
    run_dir = tmp_path / "run"
    metrics, objects = train(compose_cfg(tiny_run, run_dir=run_dir))

    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["error"] is None
    assert summary["steps"] == 33 and summary["tokens_seen"] == 33 * 8 * 32
    assert summary["length_from"] == "tokens" and summary["max_steps"] == 33 and summary["tokens_per_step"] == 8 * 32
    assert summary["params"] == objects["module"].model.num_parameters()
    for key in ("train_loss", "val_loss", "val_bpb", "tokens_per_sec", "peak_memory_mb", "wall_time_s"):
        assert summary[key] > 0, key
    assert summary["val_loss"] == pytest.approx(metrics["val/loss"])

    rows = read_csv(run_dir / "metrics.csv")
    val_losses = [float(r["val/loss"]) for r in rows if r.get("val/loss")]
    assert len(val_losses) == 4 and val_losses[-1] < val_losses[0]  # steps 10, 20, 30 and the final 33
    assert [float(r["val/tokens"]) for r in rows if r.get("val/loss")][-1] == 33 * 8 * 32
    for column in ("train/loss", "train/bpb", "train/ppl", "train/tokens", "train/grad_norm", "train/lr",
                   "val/bpb", "val/ppl", "perf/tokens_per_sec", "perf/wall_time_s"):
        assert any(r.get(column) for r in rows), column
    times = [float(r["perf/wall_time_s"]) for r in rows if r.get("perf/wall_time_s")]
    assert times == sorted(times) and 0 < times[-1] <= summary["wall_time_s"]  # seconds since the run started
    lrs = [float(r["train/lr"]) for r in rows if r.get("train/lr")]
    assert 3e-3 >= lrs[0] > lrs[-1] >= 3e-4  # cosine from the peak towards 0.1 of it

    assert (run_dir / "config.yaml").is_file() and "Document" not in (run_dir / "config.yaml").read_text()
    assert (run_dir / "samples.md").read_text().count("## step") == 4
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert len(list((run_dir / "checkpoints").glob("step*.ckpt"))) == 1  # best by val/loss

    # The final weights in upstream form load strictly into a fresh model.
    config = MiniMindConfig.from_dict(json.loads(json.dumps(objects["module"].hparams["model_config"])))
    state = torch.load(run_dir / "pretrain_64.pth", weights_only=True)
    assert all(t.dtype == torch.float16 for t in state.values())
    MiniMindForCausalLM(config).load_state_dict(state, strict=True)
    # The Lightning checkpoint is plain data too.
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 33 and ckpt["tokens_seen"] == 33 * 8 * 32


@pytest.mark.slow
def test_loss_falls_well_below_its_start_on_the_embedded_corpus(compose_cfg, tmp_path):
    """The default path of a fresh machine: default corpus, default tokenizer (trained here)."""
    run_dir = tmp_path / "run"
    cfg = compose_cfg(["experiment=quickstart", "model.num_hidden_layers=2", "data.seq_len=128", "data.num_workers=0",
                       "tokens=163840", "trainer.val_check_interval=40", "trainer.limit_val_batches=4",
                       "logger=csv", "trainer.enable_progress_bar=false"], run_dir=run_dir)
    train(cfg)
    val = [float(r["val/loss"]) for r in read_csv(run_dir / "metrics.csv") if r.get("val/loss")]
    untrained = torch.log(torch.tensor(6400.0)).item()  # ~8.76: a uniform guess over the vocabulary
    assert len(val) == 2 and val[-1] < val[0] and val[-1] < untrained - 2.0, val


@pytest.mark.parametrize("preset", ["small", "base", "moe", "minimind3", "minimind3_moe"])
def test_fast_dev_run_for_each_preset_at_tiny_shapes(compose_cfg, tiny_run, tmp_path, preset):
    overrides = [o for o in tiny_run if not o.startswith(("model.", "model="))]
    overrides += [f"model={preset}", "model.hidden_size=64", "model.num_hidden_layers=1", "model.intermediate_size=96",
                  "model.vocab_size=400", "+trainer.fast_dev_run=true", "tokens=null"]
    metrics, objects = train(compose_cfg(overrides, run_dir=tmp_path / "run"))
    reference = MiniMindConfig.from_preset(preset)
    config = objects["module"].config
    assert (config.qk_norm, config.use_moe, config.num_key_value_heads) == (
        reference.qk_norm, reference.use_moe, reference.num_key_value_heads)
    assert torch.isfinite(torch.tensor(metrics["train/loss"]))
    if config.use_moe:
        assert metrics["train/aux_loss"] > 0


def test_failed_run_records_its_error(compose_cfg, tiny_run, tmp_path):
    bad = tmp_path / "broken.jsonl"
    bad.write_text('{"text": "fine"}\n{"text": "no closing brace"\n', encoding="utf-8")
    run_dir = tmp_path / "run"
    cfg = compose_cfg([o for o in tiny_run if not o.startswith("data.path")] + [f"data.path={bad}"], run_dir=run_dir)
    with pytest.raises(Exception) as error:
        train(cfg)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed"
    assert "broken.jsonl:2: malformed" in summary["error"]  # file and line
    assert "broken.jsonl" in str(error.value)


def test_tokenizer_larger_than_model_vocabulary_is_refused(compose_cfg, tiny_run, tmp_path):
    from minimind.data import DataError

    cfg = compose_cfg(tiny_run + ["model.vocab_size=300"], run_dir=tmp_path / "run")
    with pytest.raises(DataError, match="set model.vocab_size=400"):
        train(cfg)


def test_batch_larger_than_the_data_is_refused(compose_cfg, tiny_run, tmp_path):
    from minimind.errors import ConfigurationError

    cfg = compose_cfg(tiny_run + ["data.batch_size=4096", "tokens=null", "trainer.max_steps=1"], run_dir=tmp_path / "run")
    with pytest.raises(ConfigurationError, match="fewer than one batch"):
        train(cfg)
