"""Statistics the report carries (DESIGN §5), as small functions on plain numbers and frames.

Each function wraps one scipy/statsmodels call so the tests can recompute the same figure with the
library directly; nothing here rounds (rounding is the renderer's job).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse, stats

log = logging.getLogger(__name__)

Z95 = stats.norm.ppf(0.975)
# Tight tolerances: the variational optimum then no longer depends on column order (to ~1e-8).
VB_OPTS = {"ftol": 1e-12, "gtol": 1e-8}


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


def t_ci(values, alpha: float = 0.05) -> tuple[float, float, float]:
    """Mean and t-based interval; the interval is nan with fewer than two values."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n == 0:
        return math.nan, math.nan, math.nan
    m = float(x.mean())
    if n < 2:
        return m, math.nan, math.nan
    half = float(stats.t.ppf(1 - alpha / 2, n - 1) * x.std(ddof=1) / math.sqrt(n))
    return m, m - half, m + half


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


def _indicator(codes: np.ndarray, n_levels: int) -> sparse.csr_array:
    n = len(codes)
    return sparse.csr_array((np.ones(n), (np.arange(n), codes)), shape=(n, n_levels))


@dataclass
class MixedPreference:
    """Posterior of the population preference for system A from a logistic model with random
    rater and item intercepts (variational Bayes, statsmodels BinomialBayesMixedGLM)."""

    fitted: bool
    note: str
    prob: float = math.nan
    prob_low: float = math.nan
    prob_high: float = math.nan
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


def mixed_preference(chose_a, a_left, raters, items, max_votes: int) -> MixedPreference:
    """Logistic mixed model: chose A ~ 1 + position, with random rater and item intercepts.

    The position covariate (+1/2 when A was on the left, -1/2 otherwise) absorbs a left/right
    bias so the intercept stays the preference at a balanced layout.
    """
    from statsmodels.genmod.bayes_mixed_glm import BinomialBayesMixedGLM

    y = np.asarray(chose_a, dtype=float)
    n = len(y)
    if n > max_votes:
        return MixedPreference(False, f"not fitted: {n} votes > mixed-model limit {max_votes}")
    if n == 0:
        return MixedPreference(False, "not fitted: no votes")
    raters = pd.Series(np.asarray(raters)).astype(str)
    items = pd.Series(np.asarray(items)).astype(str)
    why = random_effects_identifiable(raters, items)
    if why:
        return MixedPreference(False, f"not fitted: {why}")
    if y.min() == y.max():
        return MixedPreference(False, "not fitted: every vote chose the same system (separation)")
    pos = np.where(np.asarray(a_left, dtype=bool), 0.5, -0.5)
    exog = np.ones((n, 1)) if np.all(pos == pos[0]) else np.column_stack([np.ones(n), pos])
    rc, ic = pd.factorize(raters)[0], pd.factorize(items)[0]
    nr, ni = rc.max() + 1, ic.max() + 1
    exog_vc = sparse.hstack([_indicator(rc, nr), _indicator(ic, ni)]).tocsr()
    ident = np.r_[np.zeros(nr, dtype=int), np.ones(ni, dtype=int)]
    try:
        model = BinomialBayesMixedGLM(y, exog, exog_vc, ident, vcp_p=1, fe_p=2)
        # L-BFGS-B reaches the same optimum as the default BFGS (to ~1e-5) about 10x faster
        # once there are hundreds of random effects.
        res = model.fit_vb(fit_method="L-BFGS-B", minim_opts=VB_OPTS)
    except (np.linalg.LinAlgError, ValueError, FloatingPointError) as e:
        return MixedPreference(False, f"not fitted: {type(e).__name__}: {e}")
    m, s = float(res.fe_mean[0]), float(res.fe_sd[0])
    expit = lambda v: 1.0 / (1.0 + math.exp(-v))  # noqa: E731
    return MixedPreference(True, "random rater + item intercepts, VB posterior", expit(m),
                           expit(m - Z95 * s), expit(m + Z95 * s), m, s)


@dataclass
class MixedMOS:
    """MixedLM fit of rating ~ system with crossed random rater and item intercepts."""

    fitted: bool
    note: str
    effects: pd.DataFrame | None = None     # system, estimate, se, ci_low, ci_high (marginal mean)
    contrasts: pd.DataFrame | None = None   # system_a, system_b, diff, se, ci, z, p
    rater_var: float = math.nan
    item_var: float = math.nan
    resid_var: float = math.nan


def mixed_mos(ratings, systems, raters, items, order: list[str], max_votes: int) -> MixedMOS:
    """Cell-means MixedLM (one fixed mean per system) with a single group and two sparse variance
    components, so crossed rater and item effects are fitted without a dense n x q design."""
    from statsmodels.regression.mixed_linear_model import MixedLM, VCSpec

    y = np.asarray(ratings, dtype=float)
    n = len(y)
    if n > max_votes:
        return MixedMOS(False, f"not fitted: {n} votes > mixed-model limit {max_votes}")
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
    rc, rlev = pd.factorize(raters)
    ic, ilev = pd.factorize(items)
    mi, mr = _indicator(ic, len(ilev)), _indicator(rc, len(rlev))
    if n * (len(ilev) + len(rlev)) <= 20_000_000:
        # statsmodels slices the design column by column; dense is ~10x faster at this size.
        mi, mr = mi.toarray(), mr.toarray()
    vc = VCSpec(["item", "rater"], [[list(ilev)], [list(rlev)]], [[mi], [mr]])
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = MixedLM(y, exog, groups=np.zeros(n), exog_re=None, exog_vc=vc)
            # L-BFGS only: the BFGS fallback doubles the time and, when L-BFGS stalls, rarely
            # gets further; a non-converged fit is flagged in the note instead.
            res = model.fit(reml=True, method="lbfgs")
    except (np.linalg.LinAlgError, ValueError) as e:
        return MixedMOS(False, f"not fitted: {type(e).__name__}: {e}")
    k = len(present)
    beta = np.asarray(res.fe_params, dtype=float)[:k]
    cov = np.asarray(res.cov_params(), dtype=float)[:k, :k]
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
    vcomp = dict(zip(["item", "rater"], np.asarray(res.vcomp, dtype=float)))
    note = "REML, crossed random intercepts for rater and item"
    if not getattr(res, "converged", True):
        note += " (optimizer did not report convergence: read with care)"
    return MixedMOS(True, note, effects, contrasts, vcomp.get("rater", math.nan),
                    vcomp.get("item", math.nan), float(res.scale))
