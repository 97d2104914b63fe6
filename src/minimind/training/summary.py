"""`summary.json`: the one file that says how a run ended and what it achieved.

It is written for every run, also a failed or interrupted one (then with the error), so a
sweep's comparison never has to guess why a row is missing.
"""

from __future__ import annotations

import json
import math
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from minimind.files import atomic_write_text
from minimind.runs import SUMMARY

FIELDS = ("status", "stage", "params", "tokens_seen", "steps", "train_loss", "val_loss", "val_bpb", "tokens_per_sec",
          "mfu", "peak_memory_mb", "peak_memory_kind", "wall_time_s", "overrides", "error", "started_at",
          "finished_at", "precision", "device", "world_size", "tokens_per_step", "length_from", "max_steps",
          "init_from", "cpu_threads")


class RunSummary:
    def __init__(self, run_dir: str | Path, overrides: list[str] | None = None):
        self.path = Path(run_dir) / SUMMARY
        self.data: dict[str, Any] = dict.fromkeys(FIELDS)
        self.data.update(status="running", overrides=list(overrides or []), started_at=_now())

    def update(self, **values: Any) -> None:
        self.data.update({k: _plain(v) for k, v in values.items()})

    def fail(self, error: BaseException, interrupted: bool = False) -> None:
        from minimind.cli import expected_error

        error = expected_error(error) or error  # the message itself, not Hydra's InstantiationException around it
        detail = "".join(traceback.format_exception_only(type(error), error)).strip()
        self.update(status="interrupted" if interrupted else "failed", error=detail)

    def write(self) -> Path:
        if self.data["status"] != "running":
            self.data["finished_at"] = self.data["finished_at"] or _now()
        return atomic_write_text(self.path, json.dumps(self.data, indent=2, allow_nan=False) + "\n")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _plain(value: Any) -> Any:
    """Tensors and numpy scalars to Python numbers; NaN/inf to None (valid JSON)."""
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
