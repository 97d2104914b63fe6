"""What every figure shares: bare matplotlib `Figure`s saved as PNG, and where the code it shows lives.

Figures are drawn on `matplotlib.figure.Figure` (the Agg canvas), never through pyplot: no
display, no global state, and the caller's backend is left alone (a notebook keeps its inline one).
"""

from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

import minimind

DPI = 110
PACKAGE_ROOT = Path(minimind.__file__).resolve().parent.parent


def new_figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def save(fig: Figure, path: Path) -> Path:
    with warnings.catch_warnings():  # a token in a script the font lacks (e.g. CJK) is drawn as a box
        warnings.filterwarnings("ignore", message=r"Glyph .* missing from", category=UserWarning)
        fig.savefig(path, dpi=DPI)
    return path


def human_bytes(n: float, spec: str = ",.2f") -> str:
    """1536 -> "1.50 KiB" (binary units); `spec` formats the number, e.g. "g" for tick labels ("4 KiB")."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,.0f} B" if unit == "B" and spec == ",.2f" else f"{n:{spec}} {unit}"
        n /= 1024
    return f"{n} B"


def source(*objects: Any) -> str:
    """`minimind.model.norm.RMSNorm.forward` (minimind/model/norm.py): where each object is defined."""
    parts = []
    for obj in objects:
        module = importlib.import_module(obj.__module__)
        path = Path(module.__file__).resolve().relative_to(PACKAGE_ROOT).as_posix()
        parts.append(f"`{obj.__module__}.{obj.__qualname__}` ({path})")
    return ", ".join(parts)


@dataclass
class Section:
    """One figure's part of the report: its numbers (summary.json), its files and its text (summary.md)."""

    name: str
    data: dict[str, Any]
    files: list[Path] = field(default_factory=list)
    text: list[str] = field(default_factory=list)  # Markdown lines, the figure links included
