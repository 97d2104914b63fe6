"""A CSV logger whose `metrics.csv` survives a resume.

Lightning's CSVLogger deletes an existing metrics.csv when it starts in a non-empty folder,
so a run resumed in its own run dir would lose every row logged before the interruption.
This one keeps the file and appends; `trim_metrics_after` first drops the rows that the
resumed run will log again (those after the checkpoint it resumes from).
"""

from __future__ import annotations

import csv
from pathlib import Path

from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment

from minimind.files import atomic_writer
from minimind.runs import METRICS as METRICS_FILE


class _AppendingWriter(ExperimentWriter):
    def _check_log_dir_exists(self) -> None:
        path = Path(self.metrics_file_path)
        if path.is_file():  # continue the file: its columns are the ones known so far
            with path.open(newline="") as f:
                self.metrics_keys = sorted(next(csv.reader(f), []))


class ResumableCSVLogger(CSVLogger):
    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment


def trim_metrics_after(metrics_file: str | Path, global_step: int) -> None:
    """Keep the rows a run resumed at `global_step` will not log again: training rows before
    that step, and validation rows up to it (the checkpoint is taken after validating)."""
    path = Path(metrics_file)
    if not path.is_file():
        return
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames or [], list(reader)

    def kept(row: dict[str, str]) -> bool:
        step = int(float(row.get("step") or 0))
        is_validation = any(row.get(k) for k in fields if k.startswith("val/"))
        return step < global_step or (is_validation and step <= global_step)

    with atomic_writer(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(r for r in rows if kept(r))
