"""`compare()`: read a sweep's run dirs and write report.md, comparison.csv and the plots.

report.md holds the sweep's name, a line on how to read it, the table, the plots (relative
links, so the folder can be moved or committed as is), a Failures section with each
error in full, notes on what the run dirs lacked, and the command that regenerates it.
"""

from __future__ import annotations

import shlex
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from minimind.compare.plots import Plot, make_plots
from minimind.compare.runs import Run, Sweep, label_runs, load_runs, read_sweep, sort_runs
from minimind.compare.table import to_markdown, write_csv
from minimind.files import atomic_write_text

REPORT = "report.md"
TABLE_CSV = "comparison.csv"


@dataclass
class Comparison:
    root: Path
    out_dir: Path
    sweep: Sweep
    runs: list[Run]  # in table order
    common_overrides: list[str]
    plots: list[Plot]
    report: Path
    table_csv: Path


def compare(root: str | Path, out_dir: str | Path | None = None, sort: str = "val_loss") -> Comparison:
    """Compare every run under `root`; write the outputs into `out_dir` (default: `root`).

    Raises `NoRunsError` when `root` holds no run dir.
    """
    root = Path(root).resolve()
    out = Path(out_dir).resolve() if out_dir is not None else root
    runs = load_runs(root)
    common = label_runs(runs)
    runs = sort_runs(runs, sort)
    out.mkdir(parents=True, exist_ok=True)
    sweep = read_sweep(root, runs)
    plots = make_plots(runs, out)
    table_csv = write_csv(runs, out / TABLE_CSV)
    report = out / REPORT
    text = render_report(sweep, root, runs, common, plots, regenerate_command(root, out_dir, sort), sort)
    atomic_write_text(report, text)
    return Comparison(root, out, sweep, runs, common, plots, report, table_csv)


def regenerate_command(root: Path, out_dir: str | Path | None, sort: str) -> str:
    parts = ["python", "-m", "minimind.compare", str(Path(root).resolve())]
    if out_dir is not None and Path(out_dir).resolve() != Path(root).resolve():
        parts += ["--out", str(Path(out_dir).resolve())]
    if sort != "val_loss":
        parts += ["--sort", sort]
    return shlex.join(parts)


def status_counts(runs: list[Run]) -> str:
    counts = Counter(r.status for r in runs)
    return ", ".join(f"{n} {status}" for status, n in counts.most_common())


def render_report(sweep: Sweep, root: Path, runs: list[Run], common: list[str], plots: list[Plot],
                  command: str, sort: str = "val_loss") -> str:
    order = "validation loss" if sort == "val_loss" else f"`{sort}`"
    lines = [
        f"# Sweep comparison: {sweep.name}",
        "",
        f"`{root}` · {len(runs)} run{'s' if len(runs) != 1 else ''}: {status_counts(runs)}",
        "",
        f"**How to read this:** one row per run, best first by {order} (losses: lower is better; "
        "bits per byte compares across tokenizers); runs that did not complete follow, and runs without "
        "the value come last. \"—\" means not recorded (MFU is unknown on CPU). K/M/B = thousand/million/billion.",
        "",
    ]
    if sweep.launch_overrides:
        lines += [f"Launched as: `python train.py -m {shlex.join(sweep.launch_overrides)}`", ""]
    if common and len(runs) > 1:
        lines += ["Shared by all runs: " + ", ".join(f"`{o}`" for o in common), ""]

    lines += ["## Results", "", to_markdown(runs), "",
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
              "and left out of the loss-against-size plot.", ""]

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


def _overrides_text(run: Run) -> str:
    if run.overrides is None:
        return "overrides not recorded"
    return "`" + " ".join(run.overrides) + "`" if run.overrides else "no overrides"


def _fenced(text: str, indent: str = "") -> list[str]:
    fence = "````" if "```" in text else "```"
    return [indent + fence + "text"] + [indent + line for line in text.rstrip().splitlines()] + [indent + fence]
