"""One t interval (`regnet.metrics.stats.mean_ci`) behind every caller: the objective tables, the
MTurk report's MOS intervals (`mturk.report.stats.mos_ci`) and the ablation summary
(`regnet.pipelines.ablation.summarise`) give the same numbers for the same sample."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mturk.report import stats as report_stats
from regnet.metrics import stats as core_stats
from regnet.metrics.stats import mean_ci
from regnet.pipelines import ablation

# An undefined value (NaN) is left out by every caller alike, never turned into a NaN mean.
SAMPLE = [2.0, 3.0, 3.5, math.nan, 4.0, 2.5]


def _ablation_row(values) -> pd.Series:
    n = len(values)
    df = pd.DataFrame({"variant": "RegNet", "seed": 0, "l2_clean": values, "l2_mixed": values,
                       "train_l2_post": 0.0, "train_seconds": 1.0,
                       **{k: 0.0 for k in ("train_code_to_mixed", "train_code_to_clean",
                                           "train_zero_to_mixed", "train_zero_to_clean")},
                       **{k: [0.0] * n for k in ablation.TABLE_COLUMNS}})
    v = ablation.Variant("RegNet", "RegNet", {})
    return ablation.summarise(df, [v]).iloc[0]


def test_one_t_interval_for_every_caller():
    finite = np.array([x for x in SAMPLE if not math.isnan(x)])
    lo, hi = stats.t.interval(0.95, len(finite) - 1, loc=finite.mean(), scale=stats.sem(finite))
    ci = mean_ci(SAMPLE)
    assert (ci.n, ci.mean) == (5, pytest.approx(finite.mean()))
    assert (ci.low, ci.high) == (pytest.approx(lo, abs=1e-12), pytest.approx(hi, abs=1e-12))
    # The MTurk report's MOS interval (on the 1-5 scale, not cut here): the same numbers.
    m, rlo, rhi, how = report_stats.mos_ci(SAMPLE)
    assert how == "t" and (m, rlo, rhi) == (ci.mean, ci.low, ci.high)
    # The ablation table's mean and half width: the same numbers, rounded as the table rounds.
    row = _ablation_row(SAMPLE)
    assert row.l2_clean_mean == round(ci.mean, 4) and row.l2_clean_ci95 == round(ci.half_width, 4)
    assert row.l2_mixed_mean == round(ci.mean, 4) and row.l2_mixed_ci95 == round(ci.half_width, 4)


def test_one_value_gives_no_interval_anywhere():
    ci = mean_ci([3.0, math.nan])
    assert ci.n == 1 and ci.mean == 3.0 and math.isnan(ci.low) and math.isnan(ci.high)
    m, lo, hi, how = report_stats.mos_ci([3.0, math.nan])
    assert m == 3.0 and math.isnan(lo) and math.isnan(hi) and how == ""
    row = _ablation_row([3.0])
    assert row.l2_clean_mean == 3.0 and math.isnan(row.l2_clean_ci95)


def test_the_copies_are_gone():
    assert not hasattr(report_stats, "t_ci")
    assert ablation.mean_ci is core_stats.mean_ci
