"""Compare the runs of a sweep from their run dirs alone (no wandb, no network).

    python -m minimind.compare outputs/multiruns/2026-01-01/12-00-00-000000

runs.py reads the run dirs -> table.py makes the table (Markdown, terminal, CSV) ->
plots.py draws the PNGs -> report.py writes report.md; __main__.py is the command line.
"""

from minimind.compare.report import Comparison, compare
from minimind.compare.runs import NoRunsError, Run, load_runs

__all__ = ["compare", "Comparison", "NoRunsError", "Run", "load_runs"]
