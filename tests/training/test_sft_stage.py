"""stage=sft from a pretrained run: the replies are what is learnt, on packed rows too; the embedded demo."""

from __future__ import annotations

import csv
import json

import pytest
from commands import assert_clean_failure, run_main
from compose_train import TRAIN_OVERRIDES
from data.helpers import make_conversations, write_jsonl
from hydra.utils import instantiate

from minimind.checkpoints import load_checkpoint
from minimind.evaluate import evaluate
from minimind.training.run import train


def sft_overrides(run_dir, tokenizer_dir, data_path, *extra: str) -> list[str]:
    """The tests' tiny run shape, fine-tuned as `stage=sft init_from=<run> data.path=<conversations>`."""
    return TRAIN_OVERRIDES + ["stage=sft", f"init_from={run_dir}", f"data.path={data_path}",
                              f"data.tokenizer={tokenizer_dir}", "data.val_fraction=0.1", *extra]


@pytest.mark.parametrize("packing", [False, True])
def test_sft_from_a_pretrained_run_learns_the_replies(compose_cfg, trained_run, tiny_tokenizer_dir, tmp_path,
                                                     packing):
    pretrained, _ = trained_run
    data = write_jsonl(tmp_path / "sft.jsonl", [{"conversations": c} for c in make_conversations(300)])
    run_dir = tmp_path / "sft"
    cfg = compose_cfg(sft_overrides(pretrained, tiny_tokenizer_dir, data, "data.seq_len=128", "data.batch_size=4",
                                    f"data.packing={packing}", "optimizer.lr=3e-3", "trainer.max_steps=20",
                                    "trainer.val_check_interval=10"), run_dir=run_dir)
    metrics, objects = train(cfg)

    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["stage"] == "full_sft"
    assert summary["init_from"] == str(pretrained)
    assert (run_dir / "full_sft_64.pth").is_file()
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    batch = next(iter(datamodule.train_dataloader()))
    assert ("document_ids" in batch) == packing and (batch["labels"] == -100).any()
    # Validation scores the assistant's replies alone: the pretrained model, then the fine-tuned one.
    limit = cfg.trainer.limit_val_batches
    before = evaluate(load_checkpoint(pretrained).model, datamodule, limit_batches=limit)
    after = evaluate(objects["module"].model.eval(), datamodule, limit_batches=limit)
    real = sum(int((b["input_ids"] != 0).sum()) for _, b in zip(range(limit), datamodule.val_dataloader()))
    assert after["tokens"] == before["tokens"] < real / 2  # the prompts are not scored
    assert after["loss"] == pytest.approx(metrics["val/loss"], abs=1e-4)
    assert after["loss"] < before["loss"] - 0.3, (before, after)


def test_quickstart_sft_refuses_to_start_without_the_pretrained_run(capsys, monkeypatch, tmp_path):
    from minimind.train import main

    code, out, err = run_main(main, ["experiment=quickstart_sft", f"hydra.run.dir={tmp_path}/run"], capsys, monkeypatch)
    assert_clean_failure(code, out, err, "init_from= is required", "experiment=quickstart")


@pytest.mark.slow
def test_quickstart_sft_fine_tunes_on_the_embedded_conversations(compose_cfg, trained_run, tiny_tokenizer_dir,
                                                                   tmp_path):
    """experiment=quickstart_sft at test size: the embedded SFT set (every conversation valid, a held-out
    split), packed rows, and replies to the held-out questions in samples.md."""
    pretrained, _ = trained_run
    run_dir = tmp_path / "run"
    cfg = compose_cfg(["experiment=quickstart_sft", f"init_from={pretrained}", f"data.tokenizer={tiny_tokenizer_dir}",
                       "data.seq_len=128", "data.num_workers=0", "tokens=null", "trainer.max_steps=6",
                       "trainer.val_check_interval=3", "trainer.limit_val_batches=2", "logger=csv",
                       "trainer.enable_progress_bar=false", "callbacks.samples.max_new_tokens=8"], run_dir=run_dir)
    _, objects = train(cfg)
    meta = objects["datamodule"]._open_cache().meta
    assert meta["format"] == "sft" and meta["bad_records"]["skipped"] == 0
    assert meta["documents"]["train"] > 3000 and meta["documents"]["val"] > 100
    samples = (run_dir / "samples.md").read_text()
    assert samples.count("## step") == 2 and "What does shlex.quote do?" in samples
    with open(run_dir / "metrics.csv", newline="") as f:
        assert [r for r in csv.DictReader(f) if r.get("val/loss")]
