"""Seeds: runs that differ only by seed grouped, their spread and interval, the verdicts, the size fit,
the FLOPs and wall-time axes, and lm_eval scores in the report."""

import csv
import math
import shutil

import numpy as np
import pytest
from compare_fixtures import SEED_LOSSES, SEED_STEPS, SEED_TOKENS_PER_SEC, TOKENS_PER_STEP, wall_time
from omegaconf import OmegaConf
from scipy import stats as scipy_stats

from minimind.compare import compare
from minimind.compare.groups import Group, size_fit
from minimind.compare.plots import val_curve_on, val_series
from minimind.compare.runs import Run, load_run, load_runs
from minimind.compare.stats import fit_power_law, holm, spread, welch
from minimind.compare.table import fmt_flops
from minimind.harness import write_scores
from minimind.model import MiniMindConfig
from minimind.model.flops import training_flops_per_token

T_975 = {2: 4.302653, 1: 12.706205}  # Student's t, two-sided 95%, by degrees of freedom (printed tables)


@pytest.fixture(scope="module")
def result(seed_sweep_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("seeds") / "sweep"
    shutil.copytree(seed_sweep_dir, root)
    return compare(root)


def by_label(result):
    return {g.label: g for g in result.groups}


def test_runs_that_differ_only_by_seed_are_one_configuration(result):
    groups = by_label(result)
    assert list(groups) == ["hidden_size=256", "hidden_size=192", "hidden_size=128"]  # best mean first
    for label, group in groups.items():
        assert sorted(group.seeds) == [1, 2, 3] and len(group.runs) == 3
        assert {r.label for r in group.runs} == {f"{label}, seed={s}" for s in (1, 2, 3)}
    # Seeds of one configuration stay together in the table of runs.
    assert [r.config_label for r in result.runs] == [g.label for g in result.groups for _ in range(3)]


def test_spread_is_the_mean_sample_std_and_t_interval(result):
    groups = by_label(result)
    for override, losses in SEED_LOSSES.items():
        group = groups[override.removeprefix("model.")]
        s = group.spread("val_loss")
        mean = sum(losses) / 3
        std = math.sqrt(sum((x - mean) ** 2 for x in losses) / 2)
        assert s.n == 3 and s.mean == pytest.approx(mean) and s.std == pytest.approx(std)
        half = T_975[2] * std / math.sqrt(3)
        assert (s.ci_low, s.ci_high) == (pytest.approx(mean - half), pytest.approx(mean + half))
        rates = SEED_TOKENS_PER_SEC[override]
        assert group.spread("tokens_per_sec").mean == pytest.approx(sum(rates) / 3)
    assert groups["hidden_size=128"].spread("val_loss").std == pytest.approx(0.02)


def test_verdicts_follow_welch_and_holm(result):
    verdicts = {(v.better.label, v.worse.label): v for v in result.verdicts}
    assert set(verdicts) == {("hidden_size=256", "hidden_size=192"), ("hidden_size=256", "hidden_size=128"),
                             ("hidden_size=192", "hidden_size=128")}
    raw = {}
    for (better, worse), v in verdicts.items():
        reference = scipy_stats.ttest_ind(SEED_LOSSES[f"model.{better}"], SEED_LOSSES[f"model.{worse}"],
                                          equal_var=False)
        assert v.test.p == pytest.approx(reference.pvalue) and v.test.t == pytest.approx(reference.statistic)
        raw[(better, worse)] = reference.pvalue
    ordered = sorted(raw, key=raw.get)  # Holm: the k-th smallest times (3 - k + 1), kept monotone
    expected = np.maximum.accumulate([raw[k] * (3 - i) for i, k in enumerate(ordered)])
    for key, p in zip(ordered, expected):
        assert verdicts[key].p_adjusted == pytest.approx(min(1.0, p))
    assert verdicts[("hidden_size=256", "hidden_size=128")].distinguishable
    assert verdicts[("hidden_size=256", "hidden_size=192")].distinguishable
    assert not verdicts[("hidden_size=192", "hidden_size=128")].distinguishable


def test_report_gives_the_configurations_the_rule_and_the_verdicts_in_words(result):
    text = result.report.read_text()
    assert "## Configurations" in text and "## Runs" in text and "val loss 95% CI" in text
    assert "Wall time from the first run's start to the last one's end: 8 min 53 s." in text  # 13:00 to 13:08:53
    row = next(line for line in text.splitlines() if line.startswith("| hidden_size=128 |"))
    assert "| 3 |" in row and "4.0200 ± 0.0200" in row
    half = T_975[2] * 0.02 / math.sqrt(3)
    assert f"[{4.02 - half:.4f}, {4.02 + half:.4f}]" in row
    verdicts = text.split("## Which differences are real?")[1].split("\n## ")[0]
    assert "Welch's t-test" in verdicts and "Holm" in verdicts and "below 0.05" in verdicts
    assert "2 of 3 pairs differ by more than the seed spread" in verdicts
    assert "**hidden_size=256** beats **hidden_size=128** by 0.4900 nats/token" in verdicts
    assert "hidden_size=192 vs hidden_size=128: 0.0067 nats/token apart" in verdicts
    assert "not distinguishable at this budget" in verdicts
    with open(result.groups_csv) as handle:
        rows = {row["configuration"]: row for row in csv.DictReader(handle)}
    assert rows["hidden_size=256"]["seeds"] == "1 2 3" and float(rows["hidden_size=256"]["val_loss_mean"]) == \
        pytest.approx(3.53)


def test_a_sweep_without_seeds_says_the_noise_is_unknown(sweep_dir, tmp_path):
    result = compare(sweep_dir, out_dir=tmp_path)
    text = result.report.read_text()
    assert result.verdicts == [] and result.groups_csv is None and "## Configurations" not in text
    assert "Each configuration completed once" in text and "seed=1,2" in text


def test_flops_are_tokens_times_the_models_training_flops_per_token(result):
    for run in result.runs:
        cfg = OmegaConf.load(run.path / "config.yaml")
        per_token = training_flops_per_token(MiniMindConfig.from_dict(OmegaConf.to_container(cfg.model)),
                                             cfg.data.seq_len)
        assert run.flops_per_token == per_token
        assert run.train_flops == per_token * SEED_STEPS * TOKENS_PER_STEP
        tokens, flops, loss = val_curve_on(run, "flops")
        np.testing.assert_allclose(flops, run.val_curve.tokens * per_token)
        np.testing.assert_array_equal(loss, run.val_curve.values)
    text = result.report.read_text()
    run = result.runs[0]
    assert f"| {fmt_flops(run.train_flops)} |" in text


def test_wall_time_axis_reads_perf_wall_time(result):
    run = result.runs[0]
    _, seconds, _ = val_curve_on(run, "seconds")
    steps = [s for s in range(SEED_STEPS) if (s + 1) % 50 == 0]  # validations of the fixture
    np.testing.assert_allclose(seconds, [wall_time(s) for s in steps])


def test_curves_of_a_configuration_are_the_mean_of_its_seeds_with_their_range(result):
    group = result.groups[0]
    [series] = [s for s in val_series(result.groups, "tokens") if s.label.startswith(group.label)]
    curves = np.array([r.val_curve.values for r in group.done])
    np.testing.assert_allclose(series.x, group.done[0].val_curve.tokens)
    np.testing.assert_allclose(series.y, curves.mean(0))
    np.testing.assert_allclose(series.low, curves.min(0))
    np.testing.assert_allclose(series.high, curves.max(0))
    assert series.label == f"{group.label} (mean of 3 seeds)"
    assert all((result.out_dir / name).is_file() for name in ("val_loss_vs_flops.png", "val_loss_vs_time.png"))


def fake(params, loss, name):
    return Run(name=name, path=None, status="completed", params=params, val_loss=loss, overrides=[])


def test_size_fit_recovers_a_power_law_and_needs_four_sizes():
    sizes = [1e6, 2e6, 4e6, 8e6]
    groups = [Group(f"n={n:g}", [fake(n, 10 * n ** -0.1, f"{i}")]) for i, n in enumerate(sizes)]
    fit = size_fit(groups)
    assert fit.sizes == 4 and fit.law.exponent == pytest.approx(0.1) and fit.law.r2 == pytest.approx(1.0)
    assert fit.law.prefactor == pytest.approx(10.0)
    assert size_fit(groups[:3]) is None


def test_statistics_at_the_edges():
    one = spread([3.0])
    assert one.n == 1 and one.std is None and one.ci_low is None
    two = spread([1.0, 3.0])
    assert two.ci_high == pytest.approx(2.0 + T_975[1] * math.sqrt(2) / math.sqrt(2))
    assert spread([]) is None
    assert welch([1.0], [2.0, 3.0]) is None
    assert welch([1.0, 1.0], [2.0, 2.0]).p == 0.0 and welch([1.0, 1.0], [1.0, 1.0]).p == 1.0
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert fit_power_law([1.0, 1.0], [2.0, 3.0]) is None


def test_lm_eval_scores_beside_the_runs_join_the_tables(seed_sweep_dir, tmp_path):
    root = tmp_path / "sweep"
    shutil.copytree(seed_sweep_dir, root)
    accuracies = {}
    for run in load_runs(root):
        acc = 0.25 + 0.01 * int(run.name)
        accuracies[run.name] = acc
        write_scores(run.path / "lm_eval.json", {"minimind_stdlib_docs": {
            "metrics": {"acc": acc, "acc_stderr": 0.02, "acc_norm": acc + 0.05}, "samples": 383}})
    result = compare(root)
    text = result.report.read_text()
    header = text.split("## Runs")[1].split("\n\n")[1].splitlines()[0]
    assert "| minimind_stdlib_docs |" in header
    run = next(r for r in result.runs if r.name == "4")
    assert f"| {100 * accuracies['4']:.1f}% |" in next(line for line in text.splitlines() if line.startswith("| 4 |"))
    group = next(g for g in result.groups if run in g.runs)
    mean = np.mean([accuracies[r.name] for r in group.runs])
    assert group.spread("lm_eval/minimind_stdlib_docs").mean == pytest.approx(mean)
    configurations = text.split("## Configurations")[1].split("\n## ")[0]
    row = next(line for line in configurations.splitlines() if f"| **{group.label}** |" in line)
    std = np.std([accuracies[r.name] for r in group.runs], ddof=1)
    assert f"| {100 * mean:.1f}% ± {100 * std:.1f}% |" in row


def test_a_resumed_runs_clock_continues_where_it_stopped(tmp_path):
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    # Steps 9 and 19 before a kill at 20 s; the resumed process starts its clock again at 0.
    (run_dir / "metrics.csv").write_text(
        "epoch,step,train/loss,train/tokens,perf/wall_time_s,val/loss\n"
        "0,9,6.0,100.0,10.0,\n0,19,5.0,200.0,20.0,\n0,19,,,,5.5\n"
        "0,29,4.0,300.0,3.0,\n0,39,3.5,400.0,13.0,\n0,39,,,,4.0\n")
    run = load_run(run_dir)
    np.testing.assert_allclose(run.val_curve.seconds, [20.0, 33.0])  # 20 s, then 13 more after the resume
