"""How sure a comparison is: the spread over seeds, Welch's t-test between configurations, and a power law.

The statistics are the textbook ones, spelled out so a report can say exactly what it did:

* spread of n seeds: the mean, the sample standard deviation (n - 1 in the denominator) and a
  two-sided 95% confidence interval for the mean from Student's t-distribution with n - 1 degrees
  of freedom, mean +- t(0.975, n - 1) * std / sqrt(n). With 2 seeds t is 12.7: two runs pin down
  the mean only loosely, and the interval says so.
* two configurations: Welch's unequal-variance t-test on their seeds (Welch-Satterthwaite degrees
  of freedom), two-sided; the p-values of all pairs of a report are adjusted together with Holm's
  step-down method, so "distinguishable" holds for the whole family of pairs at level alpha.
* a power law y = a * x^(-alpha): least squares on log y against log x, with the slope's standard error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95  # of every interval in a report
ALPHA = 0.05  # family-wise error rate of the verdicts


@dataclass(frozen=True)
class Spread:
    """n values summarised; `std`, `ci_low` and `ci_high` are None with fewer than 2 values."""

    n: int
    mean: float
    std: float | None
    ci_low: float | None
    ci_high: float | None
    minimum: float
    maximum: float

    @property
    def half_width(self) -> float | None:
        return None if self.ci_high is None else self.ci_high - self.mean


def spread(values: list[float] | np.ndarray, confidence: float = CONFIDENCE) -> Spread | None:
    """Mean, sample std and the t-interval of the mean of `values` (None when there is none)."""
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if len(x) == 0:
        return None
    mean = float(x.mean())
    if len(x) < 2:
        return Spread(1, mean, None, None, None, mean, mean)
    from scipy import stats  # here: importing scipy.stats takes a second that `--help` need not wait for

    std = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, len(x) - 1)) * std / math.sqrt(len(x))
    return Spread(len(x), mean, std, mean - half, mean + half, float(x.min()), float(x.max()))


@dataclass(frozen=True)
class WelchTest:
    difference: float  # mean(a) - mean(b)
    t: float
    df: float
    p: float  # two-sided


def welch(a: list[float] | np.ndarray, b: list[float] | np.ndarray) -> WelchTest | None:
    """Welch's two-sided t-test of mean(a) = mean(b); None unless both have at least 2 values.

    Both samples without any spread (identical seeds, e.g. a fully deterministic run twice) give
    p = 0 if the means differ and p = 1 if not."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2 or len(b) < 2:
        return None
    difference = float(a.mean() - b.mean())
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se2 = va + vb
    if se2 == 0:
        return WelchTest(difference, math.copysign(math.inf, difference) if difference else 0.0, math.nan,
                         0.0 if difference else 1.0)
    from scipy import stats

    t = difference / math.sqrt(se2)
    df = se2 ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    p = float(2 * stats.t.sf(abs(t), df))
    return WelchTest(difference, float(t), float(df), p)


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment: the k-th smallest of m p-values times (m - k + 1), kept monotone, at most 1."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [0.0] * len(p_values)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


@dataclass(frozen=True)
class PowerLaw:
    """y = prefactor * x^(-exponent), fitted on log-log axes."""

    prefactor: float
    exponent: float
    exponent_se: float | None  # None with only 2 points
    r2: float
    n: int

    def __call__(self, x):
        return self.prefactor * np.asarray(x, dtype=float) ** (-self.exponent)


def fit_power_law(x: list[float] | np.ndarray, y: list[float] | np.ndarray) -> PowerLaw | None:
    """Least squares of log y on log x; None with fewer than 2 distinct x or any value <= 0."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(np.unique(x)) < 2 or (x <= 0).any() or (y <= 0).any():
        return None
    from scipy import stats

    result = stats.linregress(np.log(x), np.log(y))
    se = float(result.stderr) if len(x) > 2 else None
    return PowerLaw(float(math.exp(result.intercept)), float(-result.slope), se, float(result.rvalue ** 2), len(x))
