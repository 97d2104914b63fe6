"""The comparison tables, as Markdown (report.md), rich tables (terminal) and CSV: one row per run,
and, when runs repeat a configuration with other seeds, one row per configuration (mean, spread).

Display strings are made once here (`format_rows`, `format_group_rows`), so the report and the
terminal show the same numbers; the CSVs keep the unrounded values.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from rich.console import Console
from rich.table import Table
from rich.text import Text

from minimind.compare.groups import Group, lm_eval_value
from minimind.compare.runs import Run
from minimind.compare.stats import CONFIDENCE, Spread
from minimind.files import atomic_writer

MISSING = "—"


def fmt_count(n: float | None) -> str:
    """1_627_264 -> "1.627M": four significant digits, enough to tell GQA from MHA at these sizes."""
    if n is None:
        return MISSING
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= scale:
            return f"{n / scale:.4g}{suffix}"
    return f"{n:.0f}"


def fmt_loss(x: float | None) -> str:
    return MISSING if x is None else f"{x:.4f}"


def fmt_int(x: float | None) -> str:
    return MISSING if x is None else f"{x:,.0f}"


def fmt_percent(x: float | None) -> str:
    return MISSING if x is None else f"{100 * x:.1f}%"


def fmt_flops(x: float | None) -> str:
    """3.4213e14 -> "3.42e14": FLOPs span decades, so the exponent is what matters."""
    if x is None:
        return MISSING
    mantissa, exponent = f"{x:.2e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def fmt_seconds(x: float | None) -> str:
    if x is None:
        return MISSING
    return f"{x:.0f} s" if x < 600 else f"{x / 60:.1f} min"


def fmt_spread(s: Spread | None, fmt: Callable[[float | None], str]) -> str:
    """"mean ± std" (std of the seeds), or the one value of a single seed."""
    if s is None:
        return MISSING
    return fmt(s.mean) if s.std is None else f"{fmt(s.mean)} ± {fmt(s.std)}"


def fmt_interval(s: Spread | None, fmt: Callable[[float | None], str]) -> str:
    if s is None or s.ci_low is None:
        return MISSING
    return f"[{fmt(s.ci_low)}, {fmt(s.ci_high)}]"


def fmt_status(run: Run, width: int = 70) -> str:
    if not run.error_line:
        return run.status
    text = f"{run.status}: {run.error_line}"
    return text if len(text) <= width else text[: width - 1] + "…"


def _split(part: str) -> Callable[[Run], float | None]:
    return lambda run: None if run.breakdown is None else run.breakdown[part]


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    value: Callable[[Run], object]  # the raw value (CSV)
    text: Callable[[Run], str]  # what the table shows
    numeric: bool = True


COLUMNS = [
    Column("run", "run", lambda r: r.name, lambda r: r.name, numeric=False),
    Column("overrides", "overrides", lambda r: r.label, lambda r: r.label, numeric=False),
    Column("params", "params", lambda r: r.params, lambda r: fmt_count(r.params)),
    Column("embedding", "embedding", _split("embedding"), lambda r: fmt_count(_split("embedding")(r))),
    Column("attention", "attention", _split("attention"), lambda r: fmt_count(_split("attention")(r))),
    Column("mlp", "MLP", _split("mlp"), lambda r: fmt_count(_split("mlp")(r))),
    Column("lm_head", "LM head", _split("lm_head"), lambda r: fmt_count(_split("lm_head")(r))),
    Column("tokens_seen", "tokens", lambda r: r.tokens_seen, lambda r: fmt_count(r.tokens_seen)),
    Column("train_flops", "FLOPs", lambda r: r.train_flops, lambda r: fmt_flops(r.train_flops)),
    Column("train_loss", "train loss", lambda r: r.train_loss, lambda r: fmt_loss(r.train_loss)),
    Column("val_loss", "val loss", lambda r: r.val_loss, lambda r: fmt_loss(r.val_loss)),
    Column("val_bpb", "val bpb", lambda r: r.val_bpb, lambda r: fmt_loss(r.val_bpb)),
    Column("tokens_per_sec", "tokens/s", lambda r: r.tokens_per_sec, lambda r: fmt_int(r.tokens_per_sec)),
    Column("mfu", "MFU", lambda r: r.mfu, lambda r: fmt_percent(r.mfu)),
    Column("peak_memory_mb", "peak MB", lambda r: r.peak_memory_mb, lambda r: fmt_int(r.peak_memory_mb)),
    Column("status", "status", lambda r: r.status, fmt_status, numeric=False),
]


def lm_eval_tasks(runs: list[Run]) -> list[str]:
    """The lm_eval tasks any run has scores for, in order of first appearance."""
    tasks: list[str] = []
    for run in runs:
        tasks += [t for t in run.lm_eval if t not in tasks]
    return tasks


def lm_eval_columns(runs: list[Run]) -> list[Column]:
    """One column per lm_eval task: its headline score (accuracy for multiple choice)."""
    columns = []
    for task in lm_eval_tasks(runs):
        value = lm_eval_value(task)
        columns.append(Column(f"lm_eval/{task}", task, value, lambda r, value=value: fmt_percent(value(r))))
    return columns


def columns_for(runs: list[Run], csv: bool = False) -> list[Column]:
    """All columns and one per lm_eval task, less "LM head" unless some run unties its embedding
    (it is 0 otherwise; the CSV keeps it)."""
    untied = csv or any(r.breakdown and r.breakdown["lm_head"] for r in runs)
    columns = [c for c in COLUMNS if c.key != "lm_head" or untied]
    at = next(i for i, c in enumerate(columns) if c.key == "val_bpb") + 1
    return columns[:at] + lm_eval_columns(runs) + columns[at:]


def format_rows(runs: list[Run], columns: list[Column] | None = None) -> list[dict[str, str]]:
    columns = columns or columns_for(runs)
    return [{c.key: c.text(run) for c in columns} for run in runs]


def best_run(runs: list[Run]) -> Run | None:
    """The completed run with the lowest validation loss."""
    done = [r for r in runs if r.completed and r.val_loss is not None]
    return min(done, key=lambda r: r.val_loss) if done else None


def to_markdown(runs: list[Run]) -> str:
    columns = columns_for(runs)
    best = best_run(runs)
    lines = ["| " + " | ".join(c.header for c in columns) + " |",
             "|" + "|".join("---:" if c.numeric else ":---" for c in columns) + "|"]
    for run, row in zip(runs, format_rows(runs, columns)):
        cells = [_md_cell(row[c.key]) for c in columns]
        if run is best:
            cells = [f"**{cell}**" if c.key in ("run", "val_loss") else cell for c, cell in zip(columns, cells)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _md_cell(text: str) -> str:
    text = " ".join(str(text).split())  # no newlines inside a table row
    return text.replace("|", "\\|") or " "


# Dropped in this order when the terminal is too narrow for the whole table (report.md keeps all).
NARROW_DROP = (("embedding", "attention", "mlp", "lm_head"), ("mfu",), ("train_flops",), ("train_loss",),
               ("val_bpb",), ("peak_memory_mb",), ("tokens_seen",))


def to_rich(runs: list[Run], title: str | None = None, console: Console | None = None) -> Table:
    """The table for the terminal; with `console`, columns are dropped until it fits its width."""
    columns = columns_for(runs)
    dropped: list[str] = []
    for keys in NARROW_DROP if console is not None else ():
        if _min_width(runs, columns) <= console.width:
            break
        dropped += [c.header for c in columns if c.key in keys]
        columns = [c for c in columns if c.key not in keys]
    table = _rich_table(runs, columns, title)
    if dropped:
        table.caption = f"left out at this width: {', '.join(dropped)} (all columns in report.md)"
    return table


WRAP_MIN = 14  # narrowest the wrapping columns (overrides, status) are folded to


def _min_width(runs: list[Run], columns: list[Column]) -> int:
    """Characters the table needs: numbers in full, long text folded to WRAP_MIN, padding and borders."""
    rows = format_rows(runs, columns)
    widths = [max([len(c.header)] + [len(row[c.key]) for row in rows]) for c in columns]
    widths = [min(w, WRAP_MIN) if c.key in ("overrides", "status") else w for c, w in zip(columns, widths)]
    return sum(widths) + 3 * len(columns) + 1


def _rich_table(runs: list[Run], columns: list[Column], title: str | None) -> Table:
    best = best_run(runs)
    table = Table(title=title, header_style="bold")
    rows = format_rows(runs, columns)
    for c in columns:
        wraps = c.key in ("overrides", "status")  # the long ones; numbers never wrap
        widest = max((len(row[c.key]) for row in rows), default=0)
        table.add_column(c.header, justify="right" if c.numeric else "left", overflow="fold", no_wrap=not wraps,
                         min_width=min(widest, WRAP_MIN) if wraps else None)
    for run, row in zip(runs, rows):
        style = "green" if run.completed else "red" if run.failed else "yellow"
        # Text, not markup: overrides and errors may hold brackets ("model.x=[1,2]").
        cells = [Text(row[c.key], style=style if c.key == "status" else "") for c in columns]
        table.add_row(*cells, style="bold" if run is best else None)
    return table


def write_csv(runs: list[Run], path: Path) -> Path:
    """The table with unrounded values (and the run dir relative to the compared dir), for pandas or a
    spreadsheet."""
    columns = columns_for(runs, csv=True)
    with atomic_writer(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([c.key for c in columns] + ["seed", "steps", "wall_time_s", "error"])
        for run in runs:
            writer.writerow([_csv_value(c.value(run)) for c in columns]
                            + [_csv_value(run.seed), _csv_value(run.steps), _csv_value(run.wall_time_s),
                               run.error or ""])
    return path


# ---------------------------------------------------------------------------- one row per configuration

@dataclass(frozen=True)
class GroupColumn:
    key: str
    header: str
    text: Callable[[Group], str]
    numeric: bool = True
    metric: str | None = None  # the metric whose mean, std and interval the CSV holds


def _mean_std(key: str, fmt: Callable[[float | None], str]) -> Callable[[Group], str]:
    return lambda g: fmt_spread(g.spread(key), fmt)


def _seeds(group: Group) -> str:
    done = len(group.done)
    return str(done) if done == len(group.runs) else f"{done} of {len(group.runs)}"


CI = f"{CONFIDENCE:.0%} CI"


def group_columns(groups: list[Group]) -> list[GroupColumn]:
    tasks = lm_eval_tasks([r for g in groups for r in g.runs])
    return ([
        GroupColumn("configuration", "configuration", lambda g: g.label, numeric=False),
        GroupColumn("seeds", "seeds", _seeds),
        GroupColumn("params", "params", lambda g: fmt_count(g.params)),
        GroupColumn("train_flops", "FLOPs", lambda g: fmt_flops(s.mean if (s := g.spread("train_flops")) else None),
                    metric="train_flops"),
        GroupColumn("val_loss", "val loss", _mean_std("val_loss", fmt_loss), metric="val_loss"),
        GroupColumn("val_loss_ci", f"val loss {CI}", lambda g: fmt_interval(g.spread("val_loss"), fmt_loss)),
        GroupColumn("val_bpb", "val bpb", _mean_std("val_bpb", fmt_loss), metric="val_bpb"),
    ] + [GroupColumn(f"lm_eval/{t}", t, _mean_std(f"lm_eval/{t}", fmt_percent), metric=f"lm_eval/{t}")
         for t in tasks] + [
        GroupColumn("tokens_per_sec", "tokens/s", _mean_std("tokens_per_sec", fmt_int), metric="tokens_per_sec"),
        GroupColumn("mfu", "MFU", _mean_std("mfu", fmt_percent), metric="mfu"),
        GroupColumn("wall_time_s", "wall time", _mean_std("wall_time_s", fmt_seconds), metric="wall_time_s"),
    ])


def format_group_rows(groups: list[Group], columns: list[GroupColumn]) -> list[dict[str, str]]:
    return [{c.key: c.text(g) for c in columns} for g in groups]


def groups_to_markdown(groups: list[Group]) -> str:
    columns = group_columns(groups)
    lines = ["| " + " | ".join(c.header for c in columns) + " |",
             "|" + "|".join("---:" if c.numeric else ":---" for c in columns) + "|"]
    for group, row in zip(groups, format_group_rows(groups, columns)):
        cells = [_md_cell(row[c.key]) for c in columns]
        if group is groups[0] and group.done:
            cells = [f"**{cell}**" if c.key in ("configuration", "val_loss") else cell
                     for c, cell in zip(columns, cells)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def groups_to_rich(groups: list[Group], title: str | None = None) -> Table:
    columns = group_columns(groups)
    table = Table(title=title, header_style="bold")
    for c in columns:
        table.add_column(c.header, justify="right" if c.numeric else "left", overflow="fold",
                         no_wrap=c.numeric)
    for group, row in zip(groups, format_group_rows(groups, columns)):
        table.add_row(*[Text(row[c.key]) for c in columns], style="bold" if group is groups[0] else None)
    return table


def write_groups_csv(groups: list[Group], path: Path) -> Path:
    """One row per configuration: count, mean, std and interval of each metric, unrounded."""
    columns = [c for c in group_columns(groups) if c.metric]
    stats = ("mean", "std", "ci_low", "ci_high", "min", "max")
    with atomic_writer(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["configuration", "runs", "completed", "seeds", "params"]
                        + [f"{c.metric}_{s}" for c in columns for s in stats])
        for group in groups:
            row = [group.label, len(group.runs), len(group.done), " ".join(str(s) for s in group.seeds),
                   _csv_value(group.params)]
            for c in columns:
                s = group.spread(c.metric)
                row += [""] * len(stats) if s is None else [_csv_value(v) for v in
                                                            (s.mean, s.std, s.ci_low, s.ci_high, s.minimum, s.maximum)]
            writer.writerow(row)
    return path


def _csv_value(value: object) -> object:
    return "" if value is None else value


TEXT_COLUMNS = {c.key for c in COLUMNS if not c.numeric} | {"error", "path"}


def read_csv(path: Path) -> list[dict[str, object]]:
    """A `comparison.csv` read back (a committed report, a notebook): one dict per run, numbers as
    int or float, empty cells as None; columns it does not know are kept, as numbers where they are."""
    from minimind.errors import ToolError

    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as error:
        raise ToolError(f"cannot read {path} ({error.strerror}): pass the comparison.csv of a report "
                        "(python -m minimind.compare DIR writes one)") from None
    return [{key: _cell(key, text) for key, text in row.items() if key is not None} for row in rows]


def _cell(key: str, text: str | None) -> object:
    if text is None or text == "":
        return None
    if key in TEXT_COLUMNS:
        return text
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text
