"""The report's PNG plots, drawn on bare `Figure`s: PNGs come from the Agg canvas, with no
display, no pyplot state and no change to the caller's matplotlib backend.

Failed runs are left out of every plot. Runs that did not complete (interrupted, or
killed before writing a summary) keep their curves, dashed, but are left out of the
final-loss-against-size plot, since their last loss is not a final one. A plot with
nothing to show is not written; the report says why instead.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib import rc_context
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from minimind.compare.runs import Run
from minimind.compare.table import fmt_count

STYLE = {
    "font.size": 11,
    "axes.titlesize": 13,
    "axes.titleweight": "bold",
    "axes.labelsize": 12,
    "legend.fontsize": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
DPI = 130
TOKENS = FuncFormatter(lambda x, _: fmt_count(x) if x > 0 else "0")


@dataclass
class Plot:
    filename: str
    title: str
    path: Path | None = None  # None: not drawn, `note` says why
    note: str = ""


def make_plots(runs: list[Run], out_dir: Path) -> list[Plot]:
    """Draw every plot into `out_dir`; runs in table order give the colours and bar order."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    shown = [r for r in runs if not r.failed]
    colours = _colours(runs)
    drawers = [
        ("val_loss_vs_tokens.png", "Validation loss against tokens seen", _val_curves),
        ("train_loss_vs_tokens.png", "Training loss against tokens seen (smoothed)", _train_curves),
        ("val_loss_vs_params.png", "Final validation loss against model size", _loss_vs_params),
        ("throughput.png", "Training throughput", _throughput),
        ("peak_memory.png", "Peak memory", _peak_memory),
    ]
    plots = []
    for filename, title, draw in drawers:
        plot = Plot(filename, title)
        with rc_context(STYLE):
            fig, note = draw(shown, colours, title)
            if fig is None:
                plot.note = note
                (out_dir / filename).unlink(missing_ok=True)  # not one left from an earlier report
            else:
                plot.path = out_dir / filename
                fig.savefig(plot.path, dpi=DPI, bbox_inches="tight")
        plots.append(plot)
    return plots


# ---------------------------------------------------------------------------- curves

def _val_curves(runs, colours, title):
    drawn = [r for r in runs if len(r.val_curve)]
    if not drawn:
        return None, "no run logged a validation loss (val/loss in metrics.csv)"
    fig, ax = _figure()
    for run in drawn:
        c = run.val_curve
        ax.plot(c.tokens, c.values, marker="o", markersize=4, linewidth=1.8, color=colours[run.name],
                linestyle="-" if run.completed else "--", label=_wrap(_legend_label(run), 45))
    _finish_curves(fig, ax, title, "validation loss (nats/token)", len(drawn))
    return fig, ""


def _train_curves(runs, colours, title):
    drawn = [r for r in runs if len(r.train_curve)]
    if not drawn:
        return None, "no run logged a training loss (train/loss in metrics.csv)"
    fig, ax = _figure()
    windows = set()
    for run in drawn:
        c = run.train_curve
        smooth, window = smoothed(c.values)
        windows.add(window)
        style = "-" if run.completed else "--"
        if window > 1:
            ax.plot(c.tokens, c.values, color=colours[run.name], alpha=0.25, linewidth=1, linestyle=style)
        ax.plot(c.tokens, smooth, color=colours[run.name], linewidth=1.8, linestyle=style,
                marker="o" if len(c) == 1 else None, label=_wrap(_legend_label(run), 45))
    _finish_curves(fig, ax, title, "training loss (nats/token)", len(drawn))
    if max(windows) > 1:
        ax.text(0.01, 0.01, f"bold: centred mean of up to {max(windows)} logged points; faint: as logged",
                transform=ax.transAxes, fontsize=9, color="dimgray", va="bottom")
    return fig, ""


def smoothed(values: np.ndarray) -> tuple[np.ndarray, int]:
    """A centred moving average (no lag, unlike an EMA), the window shrinking symmetrically at the ends.

    The window grows with the number of points (about a tenth of them, odd, at most 51);
    returns the smoothed values and the window.
    """
    values = np.asarray(values, dtype=float)
    n = len(values)
    half = min(25, n // 20)
    cumsum = np.concatenate([[0.0], np.cumsum(values)])
    out = np.empty(n)
    for i in range(n):
        h = min(half, i, n - 1 - i)
        out[i] = (cumsum[i + h + 1] - cumsum[i - h]) / (2 * h + 1)
    return out, 2 * half + 1


def _finish_curves(fig, ax, title, ylabel, n):
    ax.set_title(title)
    ax.set_xlabel("tokens seen (all ranks)")
    ax.set_ylabel(ylabel)
    ax.xaxis.set_major_formatter(TOKENS)
    ax.set_xlim(left=0)
    _legend(ax, n)


# ---------------------------------------------------------------------------- final values

def _loss_vs_params(runs, colours, title):
    drawn = [r for r in runs if r.completed and r.val_loss is not None and r.params]
    if not drawn:
        return None, "no completed run has both a validation loss and a parameter count"
    fig, ax = _figure()
    x = np.array([r.params for r in drawn], dtype=float)
    y = np.array([r.val_loss for r in drawn], dtype=float)
    # Few runs with short labels: the label next to each point. Otherwise the run's name
    # there, and a legend from name to label, so labels of nearby points cannot collide.
    inline = len(drawn) <= 5 and all(len(r.label) <= 32 for r in drawn)
    offsets = _label_offsets(np.log10(x), y)
    for run, offset in zip(drawn, offsets):
        ax.scatter(run.params, run.val_loss, s=60, color=colours[run.name], zorder=3, edgecolor="black",
                   linewidth=0.5, label=None if inline else _wrap(f"{run.name}: {run.label} ({run.val_loss:.3f})", 50))
        text = f"{run.label} ({run.val_loss:.3f})" if inline else run.name
        ax.annotate(text, (run.params, run.val_loss), textcoords="offset points", xytext=offset, fontsize=9,
                    ha="left" if offset[0] > 0 else "right", va="center")
    ax.set_xscale("log")
    lo, hi = x.min(), x.max()
    ax.set_xlim(lo / 1.5, hi * (2.0 if inline else 1.5))  # room for the labels right of the points
    ax.xaxis.set_major_formatter(TOKENS)
    if hi / lo < 30:  # within about a decade the decade ticks alone leave the axis unlabelled
        ax.xaxis.set_minor_formatter(FuncFormatter(
            lambda v, _: fmt_count(v) if f"{v:.0e}"[0] in "235" else ""))
    ax.set_title(title)
    ax.set_xlabel("parameters (total, tied embedding once; log scale)")
    ax.set_ylabel("final validation loss (nats/token)")
    ax.margins(y=0.15)
    if not inline:
        _legend(ax, len(drawn))
    return fig, ""


def _label_offsets(x: np.ndarray, y: np.ndarray) -> list[tuple[int, int]]:
    """Offsets (points) for each point's label: right of it, turning to other sides when a
    point already labelled lies close by (within 4% of the plot's span), so labels do not overlap."""
    span_x = max(np.ptp(x), 1e-9)
    span_y = max(np.ptp(y), 1e-9)
    choices = [(8, 0), (-8, 0), (8, 10), (-8, 10), (8, -10), (-8, -10), (8, 20), (-8, 20)]
    placed: list[tuple[float, float, tuple[int, int]]] = []
    offsets = []
    for xi, yi in zip(x, y):
        near = {o for px, py, o in placed if abs(px - xi) / span_x < 0.04 and abs(py - yi) / span_y < 0.04}
        offset = next((o for o in choices if o not in near), choices[len(near) % len(choices)])
        placed.append((xi, yi, offset))
        offsets.append(offset)
    return offsets


def _throughput(runs, colours, title):
    drawn = [r for r in runs if r.tokens_per_sec is not None]
    if not drawn:
        return None, "no run recorded its throughput (tokens_per_sec)"
    return _bars(drawn, colours, [r.tokens_per_sec for r in drawn], title,
                 "training throughput (tokens/s, all ranks, after warm-up)", "{:,.0f}"), ""


def _peak_memory(runs, colours, title):
    drawn = [r for r in runs if r.peak_memory_mb is not None]
    if not drawn:
        return None, "no run recorded its peak memory (peak_memory_mb)"
    return _bars(drawn, colours, [r.peak_memory_mb for r in drawn], title,
                 "peak memory (MB; CUDA allocated on GPU, resident on CPU)", "{:,.0f}"), ""


def _bars(runs, colours, values, title, xlabel, fmt):
    fig, ax = _figure(height=max(2.8, 0.55 * len(runs) + 1.6))
    y = np.arange(len(runs))
    ax.barh(y, values, color=[colours[r.name] for r in runs], edgecolor="black", linewidth=0.5,
            hatch=[None if r.completed else "//" for r in runs])
    ax.set_yticks(y, [_wrap(_legend_label(r), 40) for r in runs])
    ax.invert_yaxis()  # the table's order, top to bottom
    ax.grid(axis="y", visible=False)
    top = max(values) if max(values) > 0 else 1.0
    for yi, value in zip(y, values):
        ax.text(value + 0.01 * top, yi, fmt.format(value), va="center", fontsize=10)
    ax.set_xlim(0, top * 1.18)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    return fig


# ---------------------------------------------------------------------------- helpers

def _figure(height: float = 5.5):
    fig = Figure(figsize=(10, height), layout="constrained")
    return fig, fig.add_subplot()


def _colours(runs: list[Run]) -> dict[str, tuple]:
    """One colour per run, the same in every plot."""
    if len(runs) <= 10:
        palette = list(matplotlib.colormaps["tab10"].colors)
    else:  # tab20 pairs dark and light shades: all dark ones first, so neighbours differ in hue
        tab20 = matplotlib.colormaps["tab20"].colors
        palette = list(tab20[0::2]) + list(tab20[1::2])
    return {run.name: palette[i % len(palette)] for i, run in enumerate(runs)}


def _legend_label(run: Run) -> str:
    return run.label if run.completed else f"{run.label} [{run.status}]"


def _legend(ax, n: int) -> None:
    if n <= 6:
        ax.legend(loc="best", framealpha=0.9)
    else:  # many runs: outside, to the right, so no curve is hidden
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(text, width)) or text

