"""The comparison table: one row per run, as Markdown (report.md), a rich table (terminal) and CSV.

Display strings are made once here (`format_rows`), so the report and the terminal show
the same numbers; the CSV keeps the unrounded values.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from rich.console import Console
from rich.table import Table
from rich.text import Text

from minimind.compare.runs import Run
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
    Column("train_loss", "train loss", lambda r: r.train_loss, lambda r: fmt_loss(r.train_loss)),
    Column("val_loss", "val loss", lambda r: r.val_loss, lambda r: fmt_loss(r.val_loss)),
    Column("val_bpb", "val bpb", lambda r: r.val_bpb, lambda r: fmt_loss(r.val_bpb)),
    Column("tokens_per_sec", "tokens/s", lambda r: r.tokens_per_sec, lambda r: fmt_int(r.tokens_per_sec)),
    Column("mfu", "MFU", lambda r: r.mfu, lambda r: fmt_percent(r.mfu)),
    Column("peak_memory_mb", "peak MB", lambda r: r.peak_memory_mb, lambda r: fmt_int(r.peak_memory_mb)),
    Column("status", "status", lambda r: r.status, fmt_status, numeric=False),
]


def columns_for(runs: list[Run]) -> list[Column]:
    """All columns, less "LM head" unless some run unties its embedding (it is 0 otherwise)."""
    untied = any(r.breakdown and r.breakdown["lm_head"] for r in runs)
    return [c for c in COLUMNS if c.key != "lm_head" or untied]


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
NARROW_DROP = (("embedding", "attention", "mlp", "lm_head"), ("mfu",), ("train_loss",), ("val_bpb",),
               ("peak_memory_mb",), ("tokens_seen",))


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
    """The table with unrounded values (and the run dir), for pandas or a spreadsheet."""
    with atomic_writer(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([c.key for c in COLUMNS] + ["steps", "wall_time_s", "error", "path"])
        for run in runs:
            writer.writerow([_csv_value(c.value(run)) for c in COLUMNS]
                            + [_csv_value(run.steps), _csv_value(run.wall_time_s), run.error or "", str(run.path)])
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
