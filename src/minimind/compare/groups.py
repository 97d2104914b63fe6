"""Configurations: runs that differ only by `seed`, their spread, and which differences are real.

`group_runs` puts runs whose overrides are the same apart from `seed=` into one `Group`
(runs whose overrides were not recorded stay alone). Only completed runs enter the
statistics; `verdicts` compares every pair of configurations that has at least two seeds
(see stats.py for the rule), and `size_fit` fits final loss against parameters when the
configurations span at least `MIN_SIZES` model sizes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from typing import Callable

import numpy as np

from minimind.compare.runs import Run, configuration_key
from minimind.compare.stats import ALPHA, PowerLaw, Spread, WelchTest, fit_power_law, holm, spread, welch

MIN_SIZES = 4  # distinct parameter counts before a power law is fitted


def lm_eval_value(task: str) -> Callable[[Run], float | None]:
    """A run's headline score on an lm_eval task (accuracy for multiple choice)."""
    from minimind.harness import primary_metric

    def value(run: Run) -> float | None:
        found = primary_metric(run.lm_eval[task]) if task in run.lm_eval else None
        return found[1] if found else None

    return value


METRICS: dict[str, Callable[[Run], float | None]] = {  # every sort key of the table but `name`
    "val_loss": lambda r: r.val_loss,
    "val_bpb": lambda r: r.val_bpb,
    "train_loss": lambda r: r.train_loss,
    "tokens_per_sec": lambda r: r.tokens_per_sec,
    "mfu": lambda r: r.mfu,
    "peak_memory_mb": lambda r: r.peak_memory_mb,
    "wall_time_s": lambda r: r.wall_time_s,
    "train_flops": lambda r: r.train_flops,
    "params": lambda r: r.params,
}


def metric(key: str) -> Callable[[Run], float | None]:
    """`METRICS[key]`, or `lm_eval/<task>` for a task's headline score."""
    return lm_eval_value(key.split("/", 1)[1]) if key.startswith("lm_eval/") else METRICS[key]


@dataclass
class Group:
    """One configuration: its runs (any status) in table order."""

    label: str
    runs: list[Run] = field(default_factory=list)

    @property
    def done(self) -> list[Run]:
        """The completed runs: what the statistics are over."""
        return [r for r in self.runs if r.completed]

    @property
    def seeds(self) -> list[int | None]:
        return [r.seed for r in self.done]

    @property
    def params(self) -> int | None:
        return next((r.params for r in self.runs if r.params is not None), None)

    def values(self, key: str) -> list[float]:
        get = metric(key)
        return [v for v in (get(r) for r in self.done) if v is not None]

    def spread(self, key: str) -> Spread | None:
        return spread(self.values(key))


def group_runs(runs: list[Run]) -> list[Group]:
    """Runs that differ only by seed, together; groups in the order of their first run."""
    groups: dict[tuple, Group] = {}
    for run in runs:
        key = configuration_key(run)
        if key not in groups:
            groups[key] = Group(run.config_label or run.label or run.name)
        groups[key].runs.append(run)
    return list(groups.values())


def sort_groups(groups: list[Group], key: str = "val_loss", descending: bool = False) -> list[Group]:
    """Groups with completed runs first, best mean first; the rest keep their order."""
    def order(group: Group):
        s = group.spread(key)
        return (s is None, 0.0 if s is None else (-s.mean if descending else s.mean))

    return sorted(groups, key=order)


def has_seeds(groups: list[Group]) -> bool:
    """Whether any configuration has completed more than once: then there is a spread to show."""
    return any(len(g.done) > 1 for g in groups)


@dataclass(frozen=True)
class Verdict:
    """Two configurations compared on one metric; `better` has the lower mean (or higher, for scores)."""

    better: Group
    worse: Group
    test: WelchTest
    p_adjusted: float  # Holm-adjusted over all pairs of the report

    @property
    def gap(self) -> float:
        return abs(self.test.difference)

    @property
    def distinguishable(self) -> bool:
        return self.p_adjusted < ALPHA


def verdicts(groups: list[Group], key: str = "val_loss", higher_is_better: bool = False) -> list[Verdict]:
    """Welch's t-test for every pair of configurations with at least two values each, Holm-adjusted
    together; the pairs in the groups' order (best first when `groups` is sorted)."""
    tested = [g for g in groups if len(g.values(key)) >= 2]
    pairs = []
    for a, b in combinations(tested, 2):
        result = welch(a.values(key), b.values(key))
        a_better = (result.difference > 0) == higher_is_better or result.difference == 0
        pairs.append((a, b, result) if a_better else (b, a, welch(b.values(key), a.values(key))))
    adjusted = holm([test.p for _, _, test in pairs])
    return [Verdict(better, worse, test, p) for (better, worse, test), p in zip(pairs, adjusted)]


@dataclass(frozen=True)
class SizeFit:
    law: PowerLaw
    sizes: int  # distinct parameter counts
    x: np.ndarray  # parameters of each completed run fitted
    y: np.ndarray  # its final validation loss


def size_fit(groups: list[Group]) -> SizeFit | None:
    """Final validation loss against parameters, every completed seed a point: loss = a * N^-alpha,
    with at least MIN_SIZES distinct sizes (else None)."""
    points = [(r.params, r.val_loss) for g in groups for r in g.done if r.params and r.val_loss is not None]
    sizes = len({p for p, _ in points})
    if sizes < MIN_SIZES:
        return None
    x = np.array([p for p, _ in points], dtype=float)
    y = np.array([v for _, v in points], dtype=float)
    law = fit_power_law(x, y)
    return None if law is None else SizeFit(law, sizes, x, y)
