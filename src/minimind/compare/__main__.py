"""Compare a sweep's runs: a table in the terminal, report.md and PNG plots in the sweep dir.

    python -m minimind.compare outputs/multiruns/2026-01-01/12-00-00-000000
    python -m minimind.compare outputs/multiruns/2026-01-01 --out reports/size-sweep   # all sweeps of a day
    python -m minimind.compare outputs/runs/2026-01-01/09-30-00-000000                 # one run dir
    python -m minimind.compare DIR --sort tokens_per_sec                                # fastest first
    minimind-compare DIR                                                                # the same, once installed

DIR is a Hydra multirun dir (0/, 1/, ...), a single run dir, or any folder above them:
run dirs are found recursively as the dirs holding summary.json or config.yaml.
Runs that differ only by `seed` (e.g. `python train.py -m sweep=size experiment=quickstart seed=1,2`)
are one configuration: the report gives each its mean, spread and confidence interval, and says
which differences are larger than the seed spread.
Writes report.md, comparison.csv (configurations.csv with seeds) and *.png into DIR (or --out).
Exits 2 when DIR holds no run.
"""

from __future__ import annotations

import argparse
import os
import sys

from rich.console import Console

from minimind.cli import error_message, full_errors
from minimind.compare.report import compare
from minimind.errors import MiniMindError
from minimind.compare.runs import SORT_KEYS, NoRunsError
from minimind.compare.table import groups_to_rich, to_rich


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m minimind.compare", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    parser.add_argument("dir", help="a Hydra multirun dir, a run dir, or a folder holding either")
    parser.add_argument("--out", default=None, help="where report.md and the plots go (default: DIR)")
    parser.add_argument("--sort", default="val_loss", choices=sorted(SORT_KEYS),
                        help="the column the table is ordered by (default: val_loss)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Piped or logged output keeps the table's full width instead of rich's 80-column default.
    console = Console(width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else 200)
    try:
        result = compare(args.dir, out_dir=args.out, sort=args.sort)
    except NoRunsError as error:
        print(error_message(error), file=sys.stderr)
        return 2
    except MiniMindError as error:
        if full_errors():
            raise
        print(error_message(error), file=sys.stderr)
        return 1
    console.print(to_rich(result.runs, title=f"Sweep comparison: {result.sweep.name}", console=console))
    if result.common_overrides and len(result.runs) > 1:
        console.print("shared by all runs: " + " ".join(result.common_overrides), highlight=False)
    if result.groups_csv is not None:
        console.print(groups_to_rich(result.groups, title="Configurations: mean ± std over seeds"))
    for verdict in result.verdicts:
        if verdict.distinguishable:
            console.print(f"{verdict.better.label} beats {verdict.worse.label} by {verdict.gap:.4f} "
                          "(larger than the seed spread)", highlight=False)
    if result.verdicts:
        real = sum(v.distinguishable for v in result.verdicts)
        console.print(f"{real} of {len(result.verdicts)} pairs of configurations differ by more than the seed "
                      "spread; the others are not distinguishable at this budget (rule: report.md)", highlight=False)
    if result.fit is not None:
        console.print(f"loss against parameters: exponent {result.fit.law.exponent:.3f} "
                      f"({result.fit.sizes} sizes)", highlight=False)
    for plot in result.plots:
        if plot.path is None:
            console.print(f"[dim]not drawn: {plot.filename} ({plot.note})[/]", highlight=False)
    console.print(f"report: {result.report}", highlight=False)
    return 0


def run() -> None:
    """The `minimind-compare` console script."""
    sys.exit(main())


if __name__ == "__main__":
    run()
