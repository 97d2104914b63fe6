"""`compare()`: read a sweep's run dirs and write report.md, comparison.csv and the plots.

report.md holds the sweep's name, a line on how to read it, the configurations over seeds
(mean, spread, confidence interval) with the verdicts on which differences are larger than
the seed spread, the fitted loss-against-size exponent, the table of runs, the plots
(relative links, so the folder can be moved or committed as is), a Failures section with
each error in full, notes on what the run dirs lacked, and the command that regenerates it.
Paths are shown relative to the current directory where they lie below it, so a report
made in a checkout names no machine-specific path.
"""

from __future__ import annotations

import os
import shlex
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from minimind.compare.groups import (Group, SizeFit, Verdict, group_runs, has_seeds, size_fit, sort_groups,
                                     verdicts)
from minimind.compare.plots import Plot, make_plots
from minimind.compare.runs import SORT_KEYS, Run, Sweep, label_runs, load_runs, read_sweep, sort_runs
from minimind.compare.stats import ALPHA, CONFIDENCE
from minimind.compare.table import fmt_count, groups_to_markdown, to_markdown, write_csv, write_groups_csv
from minimind.files import atomic_write_text

REPORT = "report.md"
TABLE_CSV = "comparison.csv"
GROUPS_CSV = "configurations.csv"


@dataclass
class Comparison:
    root: Path
    out_dir: Path
    sweep: Sweep
    runs: list[Run]  # in table order
    groups: list[Group]  # configurations (runs differing only by seed), in table order
    verdicts: list[Verdict]  # on validation loss, every pair of configurations with 2+ seeds
    fit: SizeFit | None  # final loss against parameters, with 4+ sizes
    common_overrides: list[str]
    plots: list[Plot]
    report: Path
    table_csv: Path
    groups_csv: Path | None  # with seeds only


def compare(root: str | Path, out_dir: str | Path | None = None, sort: str = "val_loss") -> Comparison:
    """Compare every run under `root`; write the outputs into `out_dir` (default: `root`).

    Raises `NoRunsError` when `root` holds no run dir.
    """
    root = Path(root).resolve()
    out = Path(out_dir).resolve() if out_dir is not None else root
    runs = load_runs(root)
    common = label_runs(runs)
    runs = sort_runs(runs, sort)
    attr, descending = SORT_KEYS[sort]
    groups = group_runs(runs)
    if attr != "name":
        groups = sort_groups(groups, attr, descending)
    runs = [r for g in groups for r in g.runs] if has_seeds(groups) else runs  # seeds of one configuration together
    judged = verdicts(sort_groups(groups))
    fit = size_fit(groups)
    out.mkdir(parents=True, exist_ok=True)
    sweep = read_sweep(root, runs)
    plots = make_plots(groups, out, fit)
    table_csv = write_csv(runs, out / TABLE_CSV)
    groups_csv = write_groups_csv(groups, out / GROUPS_CSV) if has_seeds(groups) else None
    if groups_csv is None:
        (out / GROUPS_CSV).unlink(missing_ok=True)  # not one left from an earlier report
    report = out / REPORT
    text = render_report(sweep, root, runs, groups, judged, fit, common, plots,
                         regenerate_command(root, out_dir, sort), sort)
    atomic_write_text(report, text)
    return Comparison(root, out, sweep, runs, groups, judged, fit, common, plots, report, table_csv, groups_csv)


def display_path(path: str | Path) -> str:
    """`path` relative to the current directory when it lies below it, else as it is."""
    path = Path(path).resolve()
    try:
        return path.relative_to(Path(os.getcwd()).resolve()).as_posix() or "."
    except ValueError:
        return str(path)


def regenerate_command(root: Path, out_dir: str | Path | None, sort: str) -> str:
    parts = ["python", "-m", "minimind.compare", display_path(root)]
    if out_dir is not None and Path(out_dir).resolve() != Path(root).resolve():
        parts += ["--out", display_path(out_dir)]
    if sort != "val_loss":
        parts += ["--sort", sort]
    return shlex.join(parts)


def time_span(runs: list[Run]) -> float | None:
    """Seconds from the first start to the last finish (summary.json's timestamps), if every run has both."""
    if not runs or any(r.started_at is None or r.finished_at is None for r in runs):
        return None
    return (max(r.finished_at for r in runs) - min(r.started_at for r in runs)).total_seconds()


def fmt_duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


def status_counts(runs: list[Run]) -> str:
    counts = Counter(r.status for r in runs)
    return ", ".join(f"{n} {status}" for status, n in counts.most_common())


def render_report(sweep: Sweep, root: Path, runs: list[Run], groups: list[Group], judged: list[Verdict],
                  fit: SizeFit | None, common: list[str], plots: list[Plot], command: str,
                  sort: str = "val_loss") -> str:
    order = "validation loss" if sort == "val_loss" else f"`{sort}`"
    seeds = has_seeds(groups)
    lines = [
        f"# Sweep comparison: {sweep.name}",
        "",
        f"`{display_path(root)}` · {len(runs)} run{'s' if len(runs) != 1 else ''}: {status_counts(runs)}"
        + (f" · {len(groups)} configurations" if seeds else ""),
        "",
        f"**How to read this:** one row per {'configuration, then one per run' if seeds else 'run'}, best first "
        f"by {order} (losses: lower is better; bits per byte compares across tokenizers); runs that did not "
        "complete follow, and runs without the value come last. \"—\" means not recorded (MFU needs a known "
        "peak FLOP/s for the device). K/M/B = thousand/million/billion; FLOPs = training compute, tokens x the "
        "model's training FLOPs per token.",
        "",
    ]
    if sweep.launch_overrides:
        lines += [f"Launched as: `python train.py -m {shlex.join(sweep.launch_overrides)}`", ""]
    span = time_span(runs)
    if span is not None and len(runs) > 1:
        lines += [f"Wall time from the first run's start to the last one's end: {fmt_duration(span)}.", ""]
    if common and len(runs) > 1:
        lines += ["Shared by all runs: " + ", ".join(f"`{o}`" for o in common), ""]

    if seeds:
        lines += ["## Configurations", "",
                  "Runs that differ only by `seed` are one configuration. Each cell is the mean over its completed "
                  f"seeds ± their standard deviation; the {CONFIDENCE:.0%} confidence interval of the mean is "
                  f"Student's t with n - 1 degrees of freedom (wide with 2 seeds: t = 12.7). Unrounded: "
                  f"[{GROUPS_CSV}]({GROUPS_CSV}).", "",
                  groups_to_markdown(groups), ""]
    lines += render_verdicts(groups, judged)
    if fit is not None:
        lines += render_fit(fit)

    lines += ["## Results" if not seeds else "## Runs", "", to_markdown(runs), "",
              "Parameters: the total counts a tied embedding once; attention = q, k, v, o projections; "
              "MLP = SwiGLU (all experts with MoE). Tokens/s is the steady-state rate after warm-up. "
              f"Unrounded values: [{TABLE_CSV}]({TABLE_CSV}).", ""]

    lines += ["## Plots", ""]
    for plot in plots:
        lines += [f"### {plot.title}", ""]
        if plot.path is not None:
            lines += [f"![{plot.title}]({plot.filename})", ""]
        else:
            lines += [f"_Not drawn: {plot.note}._", ""]
    lines += ["Failed runs are left out of the plots; runs that did not complete are dashed (hatched bars) "
              "and left out of the loss-against-size plot."
              + (" A configuration with several seeds is drawn as their mean, shaded (or whiskered) from the "
                 "lowest to the highest seed." if seeds else ""), ""]

    lines += ["## Failures", ""]
    failed = [r for r in runs if r.failed]
    incomplete = [r for r in runs if not r.failed and not r.completed]
    if not failed and not incomplete:
        lines += ["None: every run completed.", ""]
    for run in failed:
        lines += [f"- **{run.name}** ({_overrides_text(run)}): {run.status}", ""]
        if run.error:
            lines += _fenced(run.error, indent="  ") + [""]
    if incomplete:
        lines += ["Did not complete:", ""]
        for run in incomplete:
            detail = f"; {run.error_line}" if run.error_line else ""
            reached = f"; reached {run.tokens_seen:,} tokens" if run.tokens_seen else ""
            lines.append(f"- **{run.name}** ({_overrides_text(run)}): {run.status}{reached}{detail}")
        lines.append("")

    noted = [r for r in runs if r.notes]
    if noted:
        lines += ["## Notes on the run dirs", ""]
        for run in noted:
            lines += [f"- **{run.name}**: " + "; ".join(run.notes)]
        lines.append("")

    lines += ["## Regenerate", "", "```bash", command, "```", ""]
    return "\n".join(lines)


def render_verdicts(groups: list[Group], judged: list[Verdict]) -> list[str]:
    """Which differences in validation loss are larger than the seed spread, in words, with the rule."""
    lines = ["## Which differences are real?", ""]
    if not judged:
        repeated = [g for g in groups if len(g.done) > 1]
        if not repeated:
            lines += ["Each configuration completed once: how much runs vary with the seed alone is unknown, so "
                      "no difference here can be called larger than that noise. Repeat the sweep with seeds "
                      "(`python train.py -m ... seed=1,2`) and compare again.", ""]
        else:
            lines += ["Only one configuration completed with two or more seeds, so there is no pair to judge: "
                      "repeat the others with seeds too (`seed=1,2`).", ""]
        return lines
    lines += [f"**The rule:** two configurations differ when Welch's t-test on their seeds' final validation "
              f"losses (two-sided, unequal variances) gives a p-value below {ALPHA:g} after Holm's adjustment "
              f"for the {len(judged)} pair{'s' if len(judged) != 1 else ''} compared (so the chance of calling "
              f"any equal pair different is at most {ALPHA:.0%}). Otherwise the gap is within what changing the "
              "seed alone does: **not distinguishable at this budget** (more seeds or more tokens may tell them "
              "apart).", ""]
    real = [v for v in judged if v.distinguishable]
    lines.append(f"{len(real)} of {len(judged)} pair{'s' if len(judged) != 1 else ''} "
                 f"{'differ' if len(real) != 1 else 'differs'} by more than the seed spread:")
    lines.append("")
    for v in sorted(judged, key=lambda v: (not v.distinguishable, v.p_adjusted)):
        test = v.test
        detail = (f"t = {abs(test.t):.1f}, df = {test.df:.1f}, p {_p(test.p)}, Holm-adjusted p {_p(v.p_adjusted)}"
                  if test.df == test.df else "no spread within either configuration")
        if v.distinguishable:
            lines.append(f"- **{v.better.label}** beats **{v.worse.label}** by {v.gap:.4f} nats/token ({detail}): "
                         "larger than the seed spread.")
        else:
            lines.append(f"- {v.better.label} vs {v.worse.label}: {v.gap:.4f} nats/token apart ({detail}): "
                         "not distinguishable at this budget.")
    lines.append("")
    return lines


def _p(p: float) -> str:
    """"= 0.032", or "< 0.0001" for the smallest."""
    return f"= {p:.2g}" if p >= 1e-4 else "< 0.0001"


def render_fit(fit: SizeFit) -> list[str]:
    law = fit.law
    se = f" ± {law.exponent_se:.3f} (standard error)" if law.exponent_se is not None else ""
    return ["## Loss against model size", "",
            f"Fitted over {law.n} completed runs of {fit.sizes} sizes: final validation loss ≈ "
            f"{law.prefactor:.3g} × N^(−α), where N is the parameter count and α = "
            f"**{law.exponent:.3f}**{se} (a positive α: larger models reach lower losses), R² {law.r2:.2f}. Doubling the parameters changes the loss by a "
            f"factor {2 ** -law.exponent:.3f}. This is at this sweep's token budget and schedule (from "
            f"{fmt_count(fit.x.min())} to {fmt_count(fit.x.max())} parameters), not a compute-optimal scaling law: "
            "every size saw the same tokens, so the larger ones are further from what they could reach.", ""]


def _overrides_text(run: Run) -> str:
    if run.overrides is None:
        return "overrides not recorded"
    return "`" + " ".join(run.overrides) + "`" if run.overrides else "no overrides"


def _fenced(text: str, indent: str = "") -> list[str]:
    fence = "````" if "```" in text else "```"
    return [indent + fence + "text"] + [indent + line for line in text.rstrip().splitlines()] + [indent + fence]
