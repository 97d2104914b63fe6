"""Timing and reporting helpers shared by the benchmarks: medians of repeats, machine facts, a report
file that is rewritten after every row (an interrupted benchmark keeps what it measured)."""

from __future__ import annotations

import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from minimind.files import atomic_write_text


@dataclass
class Measurement:
    """Repeated measurements of one quantity; reported as median [min, max]."""

    name: str
    unit: str
    values: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def cell(self, fmt: str = ",.0f") -> str:
        if not self.values:
            return "n/a"
        return f"{self.median:{fmt}} [{min(self.values):{fmt}}, {max(self.values):{fmt}}]"


class Report:
    """A Markdown report written to `path` as it grows: every `add` rewrites the file (atomically)
    and prints the new lines."""

    def __init__(self, path: Path | None, echo: bool = True):
        self.path, self.echo, self.lines = path, echo, []

    def add(self, *lines: str) -> None:
        self.lines += lines
        if self.echo:
            print("\n".join(lines), flush=True)
        if self.path is not None:
            atomic_write_text(self.path, "\n".join(self.lines) + "\n")


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device) -> float:
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The autocast dtype of a Lightning precision string (None: no autocast), read as the Trainer reads it."""
    from minimind.precision import parse_precision

    parsed = parse_precision(precision)
    return parsed.compute_dtype if parsed.mixed else None


def machine_facts(device: torch.device) -> dict[str, str]:
    from minimind.hardware import cpu_name

    facts = {"python": platform.python_version(), "torch": torch.__version__,
             "cpu": cpu_name(), "cpu threads": str(torch.get_num_threads()),
             "os cpus": str(len(os.sched_getaffinity(0)))}
    if device.type == "cuda":
        facts["gpu"] = torch.cuda.get_device_name(device)
    import lightning

    facts["lightning"] = lightning.__version__
    return facts
