"""Statistics the report carries (docs/paper.md), as small functions on plain numbers and frames.

Each function wraps one scipy/statsmodels call so the tests can recompute the same figure with the
library directly; nothing here rounds (rounding is the renderer's job).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from regnet.metrics.stats import mean_ci

log = logging.getLogger(__name__)

Z95 = stats.norm.ppf(0.975)


def wilson(k: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval for k successes in n; (nan, nan) when n is 0."""
    from statsmodels.stats.proportion import proportion_confint

    if n <= 0:
        return math.nan, math.nan
    lo, hi = proportion_confint(int(k), int(n), alpha=alpha, method="wilson")
    return float(lo), float(hi)


def binom_p(k: int, n: int, p: float = 0.5) -> float:
    """Two-sided exact binomial test of k/n against p; nan when n is 0."""
    if n <= 0:
        return math.nan
    return float(stats.binomtest(int(k), int(n), p, alternative="two-sided").pvalue)


def holm(pvalues) -> np.ndarray:
    """Holm step-down adjustment over the non-missing p-values (missing ones stay missing)."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method="holm")[1]
    return out


def fleiss(counts: np.ndarray) -> float:
    """Fleiss' kappa from an items x categories count matrix (equal row sums required)."""
    from statsmodels.stats.inter_rater import fleiss_kappa

    return float(fleiss_kappa(np.asarray(counts, dtype=float), method="fleiss"))


def kripp_alpha(counts: np.ndarray, level: str, values=None) -> float:
    """Krippendorff's alpha from an items x values count matrix (any number of votes per item)."""
    import krippendorff

    counts = np.asarray(counts, dtype=int)
    # Units with a single vote carry no pairable information; alpha is undefined without any pair.
    if (counts.sum(axis=1) >= 2).sum() == 0:
        return math.nan
    kw = {"value_counts": counts, "level_of_measurement": level}
    if values is not None:
        kw["value_domain"] = list(values)
    try:
        with np.errstate(invalid="ignore", divide="ignore"):
            return float(krippendorff.alpha(**kw))
    except (ValueError, ZeroDivisionError):
        # e.g. every vote has the same value: no disagreement is possible, alpha is undefined.
        return math.nan


@dataclass
class MixedPreference:
    """Population share choosing A (or judging a clip real) from a linear probability mixed model:
    y (0/1) ~ 1 [+ position] with crossed random rater and item intercepts, exact REML
    (`mturk.report.mixed.fit_lmm`). The intercept is the share at a balanced left/right layout
    averaged over raters and items; its interval accounts for votes sharing a rater or an item.
    With `glmm`, the Laplace logistic GLMM's conditional share (a typical rater on a typical item)
    is added."""

    fitted: bool
    note: str
    prob: float = math.nan
    prob_low: float = math.nan
    prob_high: float = math.nan
    se: float = math.nan
    p: float = math.nan
    var_rater: float = math.nan
    var_item: float = math.nan
    var_resid: float = math.nan
    boundary: tuple[str, ...] = ()
    glmm_prob: float = math.nan
    glmm_low: float = math.nan
    glmm_high: float = math.nan
    glmm_note: str = ""
    # kept for callers of the former VB model
    logit: float = math.nan
    logit_sd: float = math.nan


def random_effects_identifiable(raters: pd.Series, items: pd.Series) -> str | None:
    """Why rater/item effects cannot be separated from noise, or None when they can."""
    if raters.nunique() < 2 or items.nunique() < 2:
        return "needs at least 2 raters and 2 items"
    if raters.value_counts().max() < 2:
        return "every rater gave one vote: rater effect not identified"
    if items.value_counts().max() < 2:
        return "every item has one vote: item effect not identified"
    return None


def _limit_note(n: int, max_votes: int | None) -> str | None:
    if max_votes is not None and max_votes > 0 and n > max_votes:
        return f"not fitted: {n} votes > --mixed-max-votes {max_votes}"
    return None


def _codes(x) -> np.ndarray:
    return pd.factorize(pd.Series(np.asarray(x)).astype(str))[0]


def _boundary_note(fit) -> str:
    if not fit.boundary:
        return ""
    return " (boundary fit: " + " and ".join(f"{b} variance estimated at 0" for b in fit.boundary) + ")"


def mixed_preference(chose_a, a_left, raters, items, max_votes: int | None = None,
                     glmm: bool = False) -> MixedPreference:
    """Linear probability mixed model for one binary comparison (see `MixedPreference`). The
    position covariate (+1/2 when A was on the left, -1/2 otherwise) absorbs a left/right bias so
    the intercept stays the preference at a balanced layout; `a_left=None` (real-or-fake) fits the
    intercept only."""
    from mturk.report.mixed import fit_glmm, fit_lmm

    y = np.asarray(chose_a, dtype=float)
    n = len(y)
    if n == 0:
        return MixedPreference(False, "not fitted: no votes")
    why = _limit_note(n, max_votes)
    if why:
        return MixedPreference(False, why)
    rs = pd.Series(np.asarray(raters)).astype(str)
    its = pd.Series(np.asarray(items)).astype(str)
    why = random_effects_identifiable(rs, its)
    if why:
        return MixedPreference(False, f"not fitted: {why}")
    if y.min() == y.max():
        return MixedPreference(False, "not fitted: every vote chose the same answer (no variation)")
    if a_left is None:
        X = np.ones((n, 1))
    else:
        pos = np.where(np.asarray(a_left, dtype=bool), 0.5, -0.5)
        X = np.ones((n, 1)) if np.all(pos == pos[0]) else np.column_stack([np.ones(n), pos])
    rc, ic = _codes(rs), _codes(its)
    try:
        f = fit_lmm(y, X, rc, ic)
    except (np.linalg.LinAlgError, ValueError, FloatingPointError) as e:
        return MixedPreference(False, f"not fitted: {type(e).__name__}: {e}")
    m, s = float(f.beta[0]), float(f.se[0])
    z = (m - 0.5) / s if s > 0 else math.nan
    p = float(2 * stats.norm.sf(abs(z))) if s > 0 else math.nan
    note = ("linear probability mixed model, crossed random rater + item intercepts, REML"
            + _boundary_note(f))
    out = MixedPreference(True, note, m, max(0.0, m - Z95 * s), min(1.0, m + Z95 * s), s, p,
                          f.var_rater, f.var_item, f.var_resid, f.boundary)
    if glmm:
        try:
            g = fit_glmm(y, X, rc, ic, var_intervals=False)
            b, sb = float(g.beta[0]), float(g.se[0])
            ex = lambda v: 1.0 / (1.0 + math.exp(-v))  # noqa: E731
            out.glmm_prob, out.glmm_low, out.glmm_high = ex(b), ex(b - Z95 * sb), ex(b + Z95 * sb)
            out.logit, out.logit_sd = b, sb
            out.glmm_note = "logistic GLMM, Laplace" + _boundary_note(g)
        except (np.linalg.LinAlgError, ValueError, FloatingPointError) as e:
            out.glmm_note = f"GLMM not fitted: {type(e).__name__}: {e}"
    return out


@dataclass
class MixedMOS:
    """Exact-REML fit of rating ~ system with crossed random rater and item intercepts."""

    fitted: bool
    note: str
    effects: pd.DataFrame | None = None     # system, estimate, se, ci_low, ci_high (marginal mean)
    contrasts: pd.DataFrame | None = None   # system_a, system_b, diff, se, ci, z, p
    rater_var: float = math.nan
    item_var: float = math.nan
    resid_var: float = math.nan
    boundary: tuple[str, ...] = ()
    var_ci: dict | None = None


def mixed_mos(ratings, systems, raters, items, order: list[str],
              max_votes: int | None = None) -> MixedMOS:
    """Cell-means model (one fixed mean per system) with crossed random rater and item
    intercepts, exact REML with sparse linear algebra (`mturk.report.mixed.fit_lmm`)."""
    from mturk.report.mixed import fit_lmm

    y = np.asarray(ratings, dtype=float)
    n = len(y)
    why = _limit_note(n, max_votes)
    if why:
        return MixedMOS(False, why)
    systems = pd.Series(np.asarray(systems)).astype(str)
    raters = pd.Series(np.asarray(raters)).astype(str)
    items = pd.Series(np.asarray(items)).astype(str)
    present = [s for s in order if (systems == s).any()]
    if not present:
        return MixedMOS(False, "not fitted: no votes")
    why = random_effects_identifiable(raters, items)
    if why:
        return MixedMOS(False, f"not fitted: {why}")
    if n <= len(present) + 3:
        return MixedMOS(False, "not fitted: too few votes for the variance components")
    exog = np.column_stack([(systems == s).to_numpy(float) for s in present])
    try:
        f = fit_lmm(y, exog, _codes(raters), _codes(items))
    except (np.linalg.LinAlgError, ValueError) as e:
        return MixedMOS(False, f"not fitted: {type(e).__name__}: {e}")
    k = len(present)
    beta = np.asarray(f.beta, dtype=float)[:k]
    cov = np.asarray(f.cov_beta, dtype=float)[:k, :k]
    se = np.sqrt(np.diag(cov))
    effects = pd.DataFrame({"system": present, "estimate": beta, "se": se,
                            "ci_low": beta - Z95 * se, "ci_high": beta + Z95 * se})
    rows = []
    for i in range(k):
        for j in range(i + 1, k):
            d = beta[i] - beta[j]
            s = math.sqrt(max(cov[i, i] + cov[j, j] - 2 * cov[i, j], 0.0))
            z = d / s if s > 0 else math.nan
            p = float(2 * stats.norm.sf(abs(z))) if s > 0 else math.nan
            rows.append({"system_a": present[i], "system_b": present[j], "diff": d, "se": s,
                         "ci_low": d - Z95 * s, "ci_high": d + Z95 * s, "z": z, "p": p})
    contrasts = pd.DataFrame(rows, columns=["system_a", "system_b", "diff", "se", "ci_low",
                                            "ci_high", "z", "p"])
    note = "exact REML, crossed random intercepts for rater and item" + _boundary_note(f)
    if not f.converged:
        note += " (optimizer did not report convergence: read with care)"
    return MixedMOS(True, note, effects, contrasts, f.var_rater, f.var_item, f.var_resid,
                    f.boundary, f.var_ci)


def mos_ci(values, lo_scale: float = 1.0, hi_scale: float = 5.0,
           alpha: float = 0.05) -> tuple[float, float, float, str]:
    """Mean of ratings on a bounded scale with an interval that stays on it: (mean, low, high,
    how), over the finite ratings. how = "t" (the t interval, `regnet.metrics.stats.mean_ci`),
    "t, cut at the scale" (the t interval intersected with [lo_scale, hi_scale]: the true mean
    lies on the scale, so the cut interval covers it exactly
    when the uncut one does), "bounded" (every rating the same, so the t interval has zero width:
    replaced by the Wilson interval of the rescaled mean, valid for any variable on the scale
    because its variance is at most p(1-p) on [0, 1]), or "" when there are fewer than two."""
    ci = mean_ci(values, level=1 - alpha)
    m, lo, hi, n = ci.mean, ci.low, ci.high, ci.n
    if n < 2:
        return m, math.nan, math.nan, ""
    width = hi_scale - lo_scale
    if hi - lo <= 1e-12 * width:
        p = (m - lo_scale) / width
        wl, wh = _wilson_real(p * n, n, alpha)
        return m, lo_scale + width * wl, lo_scale + width * wh, "bounded"
    if lo < lo_scale or hi > hi_scale:
        return m, max(lo, lo_scale), min(hi, hi_scale), "t, cut at the scale"
    return m, lo, hi, "t"


def _wilson_real(k: float, n: int, alpha: float) -> tuple[float, float]:
    """Wilson score interval for a (possibly fractional) number of successes k in n."""
    z = stats.norm.ppf(1 - alpha / 2)
    p = k / n
    den = 1 + z * z / n
    c = (p + z * z / (2 * n)) / den
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, c - h), min(1.0, c + h)


def spearman_ci(x, y, alpha: float = 0.05) -> tuple[float, float, float, float, int]:
    """Spearman's ρ with a Fisher-z interval (Bonett & Wright 2000 standard error
    sqrt((1 + ρ²/2) / (n - 3))): (rho, low, high, p, n)."""
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    ok = ~(np.isnan(x) | np.isnan(y))
    x, y = x[ok], y[ok]
    n = len(x)
    if n < 4 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan, math.nan, math.nan, math.nan, n
    r = stats.spearmanr(x, y)
    rho, p = float(r.statistic), float(r.pvalue)
    z = math.atanh(max(min(rho, 0.999999), -0.999999))
    se = math.sqrt((1 + rho * rho / 2) / (n - 3))
    q = stats.norm.ppf(1 - alpha / 2)
    return rho, math.tanh(z - q * se), math.tanh(z + q * se), p, n


def logistic_slope(y, x, groups) -> tuple[float, float, float, float]:
    """P(y=1) ~ 1 + x by maximum likelihood (statsmodels Logit), standard errors clustered by
    `groups` (votes on one item are not independent): (slope, low, high, p)."""
    import warnings

    import statsmodels.api as sm

    y = np.asarray(y, float)
    x = np.asarray(x, float)
    if len(y) < 10 or y.min() == y.max() or np.ptp(x) == 0:
        return math.nan, math.nan, math.nan, math.nan
    g = pd.factorize(pd.Series(np.asarray(groups)).astype(str))[0]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = sm.Logit(y, sm.add_constant(x)).fit(disp=0, cov_type="cluster",
                                                      cov_kwds={"groups": g})
    except (np.linalg.LinAlgError, ValueError) as e:
        log.info("logistic fit failed: %s", e)
        return math.nan, math.nan, math.nan, math.nan
    b, se = float(res.params[1]), float(res.bse[1])
    return b, b - Z95 * se, b + Z95 * se, float(res.pvalues[1])
