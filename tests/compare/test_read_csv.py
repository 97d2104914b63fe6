"""`read_csv`: a report's comparison.csv read back with the values the runs had (the notebook reads it)."""

import pytest
from compare_fixtures import FAILED_ERROR

from minimind.compare import load_runs
from minimind.compare.runs import label_runs
from minimind.compare.table import read_csv, write_csv
from minimind.errors import ToolError


def test_comparison_csv_reads_back_the_runs_values(sweep_dir, tmp_path):
    runs = load_runs(sweep_dir)
    label_runs(runs)  # the overrides column: what differs between the runs, as compare() writes it
    rows = {row["run"]: row for row in read_csv(write_csv(runs, tmp_path / "comparison.csv"))}
    assert sorted(rows) == sorted(r.name for r in runs)  # run names stay text ("0", not 0)
    for run in runs:
        row = rows[run.name]
        assert row["params"] == run.params and row["val_loss"] == run.val_loss and row["status"] == run.status
        assert row["steps"] == run.steps and row["path"] == str(run.path)
    failed = next(r for r in rows.values() if r["status"] == "failed")
    assert failed["params"] is None and failed["val_loss"] is None and failed["error"] == FAILED_ERROR
    done = next(r for r in rows.values() if r["status"] == "completed")
    assert isinstance(done["params"], int) and isinstance(done["val_loss"], float)
    labelled = [r for r in runs if r.label]
    assert labelled and all(rows[r.name]["overrides"] == r.label for r in labelled)  # text, as written


def test_a_missing_file_is_one_clear_error(tmp_path):
    with pytest.raises(ToolError, match="cannot read .*comparison.csv .*python -m minimind.compare DIR"):
        read_csv(tmp_path / "comparison.csv")
