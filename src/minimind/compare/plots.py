"""The report's PNG plots, drawn on bare `Figure`s: PNGs come from the Agg canvas, with no
display, no pyplot state and no change to the caller's matplotlib backend.

One colour per configuration (runs that differ only by seed). A configuration with
several completed seeds is drawn as their mean, with a shaded band from the lowest to the
highest seed (bars get whiskers over the same range); one seed is drawn as it is. Failed
runs are left out of every plot. Runs that did not complete (interrupted, or killed before
writing a summary) keep their curves, dashed, but are left out of the final-loss-against-size
plot, since their last loss is not a final one. A plot with nothing to show is not
written; the report says why instead.
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

from minimind.compare.groups import Group, SizeFit
from minimind.compare.runs import Run
from minimind.compare.table import fmt_count, fmt_flops

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
BAND_NOTE = "shaded: the range over seeds (lowest to highest)"
AXES = {  # x axis of the validation curves: (label, formatter, log scale)
    "tokens": ("tokens seen (all ranks)", TOKENS, False),
    "flops": ("training compute (FLOPs: tokens x the model's training FLOPs per token; log scale)",
              FuncFormatter(lambda x, _: _flops_tick(x)), True),
    "seconds": ("wall time since the run started", None, False),
}


def _flops_tick(x: float) -> str:
    """2e13, 2.5e13: fmt_flops without trailing zeros, for tick labels."""
    if x <= 0:
        return "0"
    mantissa, exponent = fmt_flops(x).split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{exponent}"


@dataclass
class Plot:
    filename: str
    title: str
    path: Path | None = None  # None: not drawn, `note` says why
    note: str = ""


def make_plots(groups: list[Group], out_dir: Path, fit: SizeFit | None = None) -> list[Plot]:
    """Draw every plot into `out_dir`; groups in table order give the colours and bar order."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    colours = _colours(groups)
    shown = [g for g in groups if any(not r.failed for r in g.runs)]
    drawers = [
        ("val_loss_vs_tokens.png", "Validation loss against tokens seen",
         lambda: _val_curves(shown, colours, "tokens")),
        ("val_loss_vs_flops.png", "Validation loss against training compute",
         lambda: _val_curves(shown, colours, "flops")),
        ("val_loss_vs_time.png", "Validation loss against wall time", lambda: _val_curves(shown, colours, "seconds")),
        ("train_loss_vs_tokens.png", "Training loss against tokens seen (smoothed)",
         lambda: _train_curves(shown, colours)),
        ("val_loss_vs_params.png", "Final validation loss against model size",
         lambda: _loss_vs_params(shown, colours, fit)),
        ("throughput.png", "Training throughput", lambda: _throughput(shown, colours)),
        ("peak_memory.png", "Peak memory", lambda: _peak_memory(shown, colours)),
    ]
    plots = []
    for filename, title, draw in drawers:
        plot = Plot(filename, title)
        with rc_context(STYLE):
            fig, note = draw()
            if fig is None:
                plot.note = note
                (out_dir / filename).unlink(missing_ok=True)  # not one left from an earlier report
            else:
                fig.axes[0].set_title(title)
                plot.path = out_dir / filename
                fig.savefig(plot.path, dpi=DPI, bbox_inches="tight")
        plots.append(plot)
    return plots


# ---------------------------------------------------------------------------- series

@dataclass
class Series:
    """What one line of a curve plot shows: a run, or the mean of a configuration's seeds with their range."""

    label: str
    colour: tuple
    x: np.ndarray
    y: np.ndarray
    low: np.ndarray | None = None  # the band (lowest and highest seed), with 2+ seeds
    high: np.ndarray | None = None
    dashed: bool = False  # a run that did not complete


def val_curve_on(run: Run, axis: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A run's validation curve against `axis` as (tokens, x, loss): x is tokens, flops (tokens x the
    run's training FLOPs per token) or seconds (wall time); points without an x are left out."""
    c = run.val_curve
    if axis == "tokens":
        x = c.tokens
    elif axis == "flops":
        x = c.tokens * (float(run.flops_per_token) if run.flops_per_token is not None else np.nan)
    elif axis == "seconds":
        x = c.seconds if len(c.seconds) == len(c) else np.full(len(c), np.nan)
    else:
        raise ValueError(f"unknown axis {axis!r}: one of {sorted(AXES)}")
    keep = np.isfinite(x)
    return c.tokens[keep], np.asarray(x[keep], dtype=float), c.values[keep]


def _mean_series(runs: list[Run], label: str, colour: tuple, points) -> Series | None:
    """The mean over `runs` of `points(run) -> (tokens, x, y)`, on the first run's token grid
    within the range every run covers (seeds of one configuration log at the same steps)."""
    curves = [points(r) for r in runs]
    curves = [c for c in curves if len(c[0])]
    if not curves:
        return None
    if len(curves) == 1:
        _, x, y = curves[0]
        return Series(label, colour, x, y)
    lo = max(t.min() for t, _, _ in curves)
    hi = min(t.max() for t, _, _ in curves)
    grid = curves[0][0][(curves[0][0] >= lo) & (curves[0][0] <= hi)]
    if len(grid) == 0:
        return None
    xs = np.array([np.interp(grid, t, x) for t, x, _ in curves])
    ys = np.array([np.interp(grid, t, y) for t, _, y in curves])
    return Series(f"{label} (mean of {len(curves)} seeds)", colour, xs.mean(0), ys.mean(0), ys.min(0), ys.max(0))


def _series(groups: list[Group], colours, points) -> list[Series]:
    """Per configuration: the mean of its completed runs; runs that did not complete, each dashed."""
    out = []
    for group in groups:
        mean = _mean_series(group.done, group.label, colours[id(group)], points)
        if mean is not None:
            out.append(mean)
        for run in group.runs:
            if not run.completed and not run.failed:
                t, x, y = points(run)
                if len(t):
                    out.append(Series(f"{group.label} [{run.name}: {run.status}]", colours[id(group)], x, y,
                                      dashed=True))
    return out


def _draw(ax, series: list[Series], marker: str | None = "o") -> bool:
    """Draw each series (with its band); returns whether any band was drawn."""
    banded = False
    for s in series:
        if s.low is not None:
            ax.fill_between(s.x, s.low, s.high, color=s.colour, alpha=0.2, linewidth=0)
            banded = True
        ax.plot(s.x, s.y, marker=marker if marker or len(s.x) > 1 else "o", markersize=4, linewidth=1.8,
                color=s.colour, linestyle="--" if s.dashed else "-", label=_wrap(s.label, 45))
    return banded


# ---------------------------------------------------------------------------- curves

def val_series(groups: list[Group], axis: str, colours: dict[int, tuple] | None = None) -> list[Series]:
    """What the validation-loss plot against `axis` (tokens, flops, seconds) draws: per configuration the
    mean of its completed seeds with their range, and each run that did not complete."""
    return _series(groups, colours or _colours(groups), lambda run: val_curve_on(run, axis))


def _val_curves(groups, colours, axis):
    series = val_series(groups, axis, colours)
    if not series:
        what = {"tokens": "a validation loss (val/loss in metrics.csv)",
                "flops": "a validation loss and a model config with data.seq_len (for its FLOPs)",
                "seconds": "a validation loss with its wall time (perf/wall_time_s in metrics.csv, or "
                           "summary.json's wall_time_s)"}[axis]
        return None, f"no run logged {what}"
    fig, ax = _figure()
    banded = _draw(ax, series)
    label, formatter, log = AXES[axis]
    if axis == "seconds":
        longest = max(s.x.max() for s in series)
        unit, scale = ("minutes", 60.0) if longest > 600 else ("seconds", 1.0)
        formatter = FuncFormatter(lambda v, _: f"{v / scale:g}")
        label = f"{label} ({unit})"
    if log:
        _log_axis(ax, formatter, min(s.x.min() for s in series), max(s.x.max() for s in series))
    else:
        ax.set_xlim(left=0)
        if formatter is not None:
            ax.xaxis.set_major_formatter(formatter)
    ax.set_xlabel(label)
    ax.set_ylabel("validation loss (nats/token)")
    _legend(ax, len(series))
    if banded:
        _corner_note(ax, BAND_NOTE)
    return fig, ""


def _train_curves(groups, colours):
    def points(run):
        c = run.train_curve
        return c.tokens, c.tokens, smoothed(c.values)[0]

    series = _series(groups, colours, points)
    if not series:
        return None, "no run logged a training loss (train/loss in metrics.csv)"
    fig, ax = _figure()
    windows = {smoothed(r.train_curve.values)[1] for g in groups for r in g.runs if len(r.train_curve)}
    singles = [(g, r) for g in groups for r in g.runs  # runs drawn on their own: one seed, or not completed
               if len(r.train_curve) and not r.failed and (not r.completed or len(g.done) == 1)]
    if max(windows) > 1:  # their logged points, faint
        for group, run in singles:
            ax.plot(run.train_curve.tokens, run.train_curve.values, color=colours[id(group)], alpha=0.25,
                    linewidth=1, linestyle="-" if run.completed else "--")
    banded = _draw(ax, series, marker=None)
    ax.set_xlabel(AXES["tokens"][0])
    ax.set_ylabel("training loss (nats/token)")
    ax.xaxis.set_major_formatter(TOKENS)
    ax.set_xlim(left=0)
    _legend(ax, len(series))
    notes = []
    if max(windows) > 1:
        faint = "; faint: as logged" if singles else ""
        notes.append(f"bold: centred mean of up to {max(windows)} logged points{faint}")
    if banded:
        notes.append(BAND_NOTE)
    if notes:
        _corner_note(ax, "\n".join(notes))
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


# ---------------------------------------------------------------------------- final values

def _loss_vs_params(groups, colours, fit: SizeFit | None):
    drawn = [g for g in groups if g.params and g.values("val_loss")]
    if not drawn:
        return None, "no completed run has both a validation loss and a parameter count"
    fig, ax = _figure()
    x = np.array([g.params for g in drawn], dtype=float)
    y = np.array([g.spread("val_loss").mean for g in drawn])
    # Few configurations with short labels: the label next to each point. Otherwise a number
    # there, and a legend from number to label, so labels of nearby points cannot collide.
    inline = len(drawn) <= 5 and all(len(g.label) <= 32 for g in drawn)
    offsets = _label_offsets(np.log10(x), y)
    banded = False
    for i, (group, offset) in enumerate(zip(drawn, offsets), 1):
        s = group.spread("val_loss")
        if s.n > 1:
            ax.errorbar(group.params, s.mean, yerr=[[s.mean - s.minimum], [s.maximum - s.mean]], fmt="none",
                        ecolor=colours[id(group)], elinewidth=1.5, capsize=4, zorder=2)
            banded = True
        ax.scatter(group.params, s.mean, s=60, color=colours[id(group)], zorder=3, edgecolor="black",
                   linewidth=0.5, label=None if inline else _wrap(f"{i}: {group.label} ({s.mean:.3f})", 50))
        text = f"{group.label} ({s.mean:.3f})" if inline else str(i)
        ax.annotate(text, (group.params, s.mean), textcoords="offset points", xytext=offset, fontsize=9,
                    ha="left" if offset[0] > 0 else "right", va="center")
    if fit is not None:
        line = np.geomspace(x.min(), x.max(), 50)
        ax.plot(line, fit.law(line), color="dimgray", linestyle="--", linewidth=1.2, zorder=1,
                label=f"fit: loss = {fit.law.prefactor:.3g} x N^{-fit.law.exponent:.3f}")
    lo, hi = x.min(), x.max()
    _log_axis(ax, TOKENS, lo, hi)
    ax.set_xlim(lo / 1.5, hi * (2.0 if inline else 1.5))  # room for the labels right of the points
    ax.set_xlabel("parameters (total, tied embedding once; log scale)")
    ax.set_ylabel("final validation loss (nats/token)")
    ax.margins(y=0.15)
    if not inline or fit is not None:
        _legend(ax, len(drawn) if not inline else 1)
    if banded:
        _corner_note(ax, "points: mean over seeds; whiskers: the range over seeds (lowest to highest)")
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


def _throughput(groups, colours):
    return _bars(groups, colours, "tokens_per_sec", "training throughput (tokens/s, all ranks, after warm-up)",
                 "no run recorded its throughput (tokens_per_sec)")


def _peak_memory(groups, colours):
    return _bars(groups, colours, "peak_memory_mb", "peak memory (MB; CUDA allocated on GPU, resident on CPU)",
                 "no run recorded its peak memory (peak_memory_mb)")


def _bars(groups, colours, key, xlabel, missing):
    """One bar per configuration: the mean of its completed runs (whiskers: their range), or, without
    any, of its runs that did not complete (hatched)."""
    bars = []  # (label, colour, values, complete)
    for group in groups:
        values = [getattr(r, key) for r in group.done if getattr(r, key) is not None]
        complete = bool(values)
        if not values:
            values = [getattr(r, key) for r in group.runs if not r.failed and getattr(r, key) is not None]
        if values:
            bars.append((group.label, colours[id(group)], values, complete))
    if not bars:
        return None, missing
    fig, ax = _figure(height=max(2.8, 0.55 * len(bars) + 1.6))
    y = np.arange(len(bars))
    means = [float(np.mean(v)) for _, _, v, _ in bars]
    ax.barh(y, means, color=[c for _, c, _, _ in bars], edgecolor="black", linewidth=0.5,
            hatch=[None if complete else "//" for _, _, _, complete in bars])
    whiskers = any(len(v) > 1 for _, _, v, _ in bars)
    for yi, (_, _, values, _), mean in zip(y, bars, means):
        if len(values) > 1:
            ax.errorbar(mean, yi, xerr=[[mean - min(values)], [max(values) - mean]], fmt="none", ecolor="black",
                        elinewidth=1, capsize=3)
    ax.set_yticks(y, [_wrap(label if complete else f"{label} [not completed]", 40)
                      for label, _, _, complete in bars])
    ax.invert_yaxis()  # the table's order, top to bottom
    ax.grid(axis="y", visible=False)
    top = max(max(v) for _, _, v, _ in bars)
    top = top if top > 0 else 1.0
    for yi, (_, _, values, _), mean in zip(y, bars, means):
        ax.text(max(values) + 0.01 * top, yi, f"{mean:,.0f}", va="center", fontsize=10)
    ax.set_xlim(0, top * 1.18)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_xlabel(xlabel + ("; bars: mean over seeds, whiskers: their range" if whiskers else ""))
    return fig, ""


# ---------------------------------------------------------------------------- helpers

def _log_axis(ax, formatter: FuncFormatter, lo: float, hi: float) -> None:
    """A log x axis labelled by `formatter`; within about a decade (where decade ticks alone leave it
    unlabelled) the minor ticks at 2, 3 and 5 are labelled too."""
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(formatter)
    if hi / max(lo, 1e-300) < 30:
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, pos: formatter(v, pos) if f"{v:.0e}"[0] in "235" else ""))


def _figure(height: float = 5.5):
    fig = Figure(figsize=(10, height), layout="constrained")
    return fig, fig.add_subplot()


def _colours(groups: list[Group]) -> dict[int, tuple]:
    """One colour per configuration (by identity), the same in every plot."""
    if len(groups) <= 10:
        palette = list(matplotlib.colormaps["tab10"].colors)
    else:  # tab20 pairs dark and light shades: all dark ones first, so neighbours differ in hue
        tab20 = matplotlib.colormaps["tab20"].colors
        palette = list(tab20[0::2]) + list(tab20[1::2])
    return {id(group): palette[i % len(palette)] for i, group in enumerate(groups)}


def _corner_note(ax, text: str) -> None:
    ax.text(0.01, 0.01, text, transform=ax.transAxes, fontsize=9, color="dimgray", va="bottom")


def _legend(ax, n: int) -> None:
    if n <= 6:
        ax.legend(loc="best", framealpha=0.9)
    else:  # many series: outside, to the right, so no curve is hidden
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(text, width)) or text
