"""Reading run dirs: discovery, partial runs, the step -> tokens mapping, labels and order."""

import json
import shutil

import numpy as np
import pytest
from compare_fixtures import STEPS, TOKENS_PER_STEP, train_loss, val_losses
from omegaconf import OmegaConf

from minimind.compare.runs import (NO_SUMMARY, NoRunsError, Run, find_run_dirs, label_runs, load_run, load_runs,
                                   read_sweep, sort_runs)
from minimind.model import MiniMindConfig
from minimind.model.params import parameter_breakdown


def by_name(runs):
    return {r.name: r for r in runs}


def test_finds_run_dirs_in_natural_order_and_not_hydra_dirs(sweep_dir, tmp_path):
    assert [p.name for p in find_run_dirs(sweep_dir)] == ["0", "1", "2", "3"]
    for n in (10, 9):  # "10" after "9", not after "1"
        (tmp_path / "s" / str(n)).mkdir(parents=True)
        (tmp_path / "s" / str(n) / "summary.json").write_text("{}")
    (tmp_path / "s" / ".hydra").mkdir()
    (tmp_path / "s" / ".hydra" / "config.yaml").write_text("a: 1\n")
    assert [p.name for p in find_run_dirs(tmp_path / "s")] == ["9", "10"]


def test_nested_sweeps_and_a_single_run_dir(sweep_dir, tmp_path):
    shutil.copytree(sweep_dir, tmp_path / "day" / "12-00")
    shutil.copytree(sweep_dir / "1", tmp_path / "day" / "13-00" / "0")
    names = [r.name for r in load_runs(tmp_path / "day")]
    assert names == ["12-00/0", "12-00/1", "12-00/2", "12-00/3", "13-00/0"]
    [single] = load_runs(sweep_dir / "1")
    assert single.name == "1" and single.completed


def test_no_run_dirs_is_an_error_that_says_what_was_expected(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(NoRunsError, match="no run dirs found .*summary.json or config.yaml"):
        load_runs(tmp_path / "empty")
    with pytest.raises(NoRunsError, match="not a directory"):
        load_runs(tmp_path / "missing")


def test_completed_run_reads_summary_and_curves(sweep_dir):
    run = load_run(sweep_dir / "1", sweep_dir)
    summary = json.loads((sweep_dir / "1" / "summary.json").read_text())
    assert run.status == "completed" and run.error is None
    assert run.val_loss == summary["val_loss"] and run.tokens_per_sec == summary["tokens_per_sec"]
    assert run.mfu is None and run.notes == []
    # Validations at steps 99, 199, ... come after 100, 200, ... optimizer steps: read off the train rows.
    expected = val_losses(STEPS - 1, 3.6)
    np.testing.assert_allclose(run.val_curve.tokens, [t for t, _ in expected])
    np.testing.assert_allclose(run.val_curve.values, [v for _, v in expected])
    assert len(run.train_curve) == STEPS // 10
    assert run.train_curve.tokens[0] == 10 * TOKENS_PER_STEP and run.train_curve.values[0] == train_loss(9, 3.6)


def test_param_split_is_parameter_breakdown_of_the_run_config(sweep_dir):
    for name in ("0", "1", "3"):
        model = OmegaConf.to_container(OmegaConf.load(sweep_dir / name / "config.yaml").model)
        expected = parameter_breakdown(MiniMindConfig.from_dict(model))
        run = load_run(sweep_dir / name, sweep_dir)
        assert run.breakdown == expected and run.params == expected["total"]
    assert load_run(sweep_dir / "1", sweep_dir).config["model"]["hidden_size"] == 256


def test_failed_run_with_only_a_summary(sweep_dir):
    run = load_run(sweep_dir / "2", sweep_dir)
    assert run.failed and run.breakdown is None and run.params is None and run.val_loss is None
    assert run.overrides[-1] == "model.num_attention_heads=3"
    assert run.error_line.startswith("ConfigurationError: invalid MiniMindConfig: num_attention_heads=4")
    assert len(run.val_curve) == 0 and run.notes == []


def test_killed_run_without_summary_is_filled_from_metrics_csv(sweep_dir):
    run = load_run(sweep_dir / "3", sweep_dir)
    assert run.status == NO_SUMMARY
    assert run.overrides[-1] == "model.hidden_size=192"  # from .hydra/overrides.yaml
    assert run.tokens_seen == 250 * TOKENS_PER_STEP and run.steps == 250  # the row cut off at step 259 is skipped
    assert run.val_loss == val_losses(250, 4.0)[-1][1] and run.train_loss == train_loss(249, 4.0)
    assert run.tokens_per_sec == 20_000.0  # median of the logged rolling rates, past the slow start
    assert any("from metrics.csv" in note and "val_loss" in note for note in run.notes)
    assert run.breakdown["total"] > 0


def test_val_rows_without_train_tokens_use_the_summary_rate(tmp_path):
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    (run_dir / "metrics.csv").write_text("epoch,step,val/loss\n0,49,5.0\n0,99,4.0\n")
    (run_dir / "summary.json").write_text(json.dumps({"status": "completed", "tokens_seen": 100 * 512, "steps": 100}))
    run = load_run(run_dir)
    np.testing.assert_allclose(run.val_curve.tokens, [50 * 512, 100 * 512])


def test_resumed_run_keeps_the_last_value_of_a_repeated_step(tmp_path):
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text("seed: 1\n")
    (run_dir / "metrics.csv").write_text(
        "epoch,step,train/loss,train/tokens,val/loss\n"
        "0,9,6.0,1000.0,\n0,19,5.0,2000.0,\n0,19,,,4.9\n"
        "0,19,5.5,2000.0,\n0,29,4.0,3000.0,\n0,29,,,nan\n")  # resumed from step 19; a NaN cell is skipped
    run = load_run(run_dir)
    np.testing.assert_allclose(run.train_curve.values, [6.0, 5.5, 4.0])
    np.testing.assert_allclose(run.val_curve.tokens, [2000.0])
    assert run.steps == 30 and run.tokens_seen == 3000


def test_unreadable_summary_does_not_stop_the_comparison(tmp_path):
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    (run_dir / "summary.json").write_text('{"status": "compl')
    run = load_run(run_dir)
    assert run.status.startswith("unknown") and any("summary.json unreadable" in n for n in run.notes)


def fake(name, overrides, val=None, status="completed", tps=None):
    return Run(name=name, path=None, status=status, overrides=overrides, val_loss=val, tokens_per_sec=tps)


def test_labels_show_only_varying_overrides_shortened_where_unambiguous():
    runs = [fake("0", ["experiment=quickstart", "model.hidden_size=128", "a.dropout=0.1", "b.dropout=0"]),
            fake("1", ["experiment=quickstart", "model.hidden_size=256", "a.dropout=0.2", "b.dropout=0"]),
            fake("2", ["experiment=quickstart"]),
            fake("3", None)]
    assert label_runs(runs) == ["experiment=quickstart"]
    # b.dropout varies too: run 2 keeps the default. Two keys end in "dropout": both stay in full.
    assert [r.label for r in runs] == ["hidden_size=128, a.dropout=0.1, b.dropout=0",
                                       "hidden_size=256, a.dropout=0.2, b.dropout=0", "(defaults)", "3"]
    twins = [fake("0", ["seed=1"]), fake("1", ["seed=1"])]
    label_runs(twins)
    assert [r.label for r in twins] == ["0", "1"]


def test_sort_completed_by_value_then_incomplete_then_missing():
    runs = [fake("a", [], None, "failed"), fake("b", [], 3.0, NO_SUMMARY, tps=9.0), fake("c", [], 4.0, tps=1.0),
            fake("d", [], 3.5, tps=5.0), fake("e", [], None, "completed")]
    assert [r.name for r in sort_runs(runs)] == ["d", "c", "b", "e", "a"]
    assert [r.name for r in sort_runs(runs, "tokens_per_sec")] == ["d", "c", "b", "e", "a"]  # fastest first


def test_sweep_name_and_launch_line_from_multirun_yaml(sweep_dir, tmp_path):
    sweep = read_sweep(sweep_dir)
    assert sweep.name.endswith("12-00-00-000000")
    assert "model.hidden_size=128,256,192" in sweep.launch_overrides
    (tmp_path / "multirun.yaml").write_text("sweep_name: size\nhydra:\n  overrides:\n    task: [sweep=size]\n")
    assert read_sweep(tmp_path).name.startswith("size (")


def test_metrics_csv_of_a_logger_with_its_own_subdir_is_found(tmp_path):
    run_dir = tmp_path / "r"
    (run_dir / "csv" / "version_0").mkdir(parents=True)
    (run_dir / "wandb" / "run-1").mkdir(parents=True)
    (run_dir / "config.yaml").write_text("seed: 1\n")
    (run_dir / "csv" / "version_0" / "metrics.csv").write_text("step,train/loss,train/tokens\n9,5.0,100.0\n")
    (run_dir / "wandb" / "run-1" / "metrics.csv").write_text("step,train/loss,train/tokens\n9,1.0,100.0\n")
    run = load_run(run_dir)
    assert run.train_loss == 5.0 and run.status == NO_SUMMARY
