"""Mean and t-based 95% confidence interval, the summary every objective table carries."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class MeanCI:
    n: int
    mean: float
    low: float
    high: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2.0


def mean_ci(values, level: float = 0.95) -> MeanCI:
    """Mean with a Student-t interval over the finite values (NaN = metric undefined for that clip,
    e.g. precision with no detected onsets). One value gives no interval (NaN bounds)."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n == 0:
        return MeanCI(0, math.nan, math.nan, math.nan)
    m = float(x.mean())
    if n == 1:
        return MeanCI(1, m, math.nan, math.nan)
    sem = float(x.std(ddof=1)) / math.sqrt(n)
    half = float(stats.t.ppf(0.5 + level / 2.0, df=n - 1)) * sem
    return MeanCI(n, m, m - half, m + half)
