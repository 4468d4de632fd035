"""Crossed rater + item random-intercept models at study scale, written with sparse linear algebra.

Two models, one engine:

* `fit_lmm`: y = Xβ + Z_r u_r + Z_i u_i + e with u_r ~ N(0, σ_r²), u_i ~ N(0, σ_i²),
  e ~ N(0, σ²), fitted by exact REML. σ² is profiled out, leaving a criterion in the two variance
  ratios θ = (σ_r²/σ², σ_i²/σ²) ≥ 0. Only sufficient statistics (Z'X, Z'y, X'X, ...) enter each
  evaluation, so the cost per evaluation does not grow with the number of votes.
* `fit_glmm`: logit P(y=1) = Xβ + Z_r u_r + Z_i u_i (binary 2AFC / real-or-fake votes), fitted by
  the Laplace approximation with β and the conditional modes found together by penalised
  iteratively reweighted least squares (the approach of lme4's `glmer(nAGQ=0)`).

Both use the relative covariance factor Λ = diag(λ_r I, λ_i I), λ = √θ, so a variance component of
exactly zero is an ordinary point of the parameter space (bounds λ ≥ 0). The system
A = I + ΛZ'WZΛ is solved by eliminating the larger of the two (diagonal) blocks and factoring the
Schur complement of the smaller one (dense Cholesky up to `DENSE_MAX`, sparse LU beyond).

Boundary fits: after L-BFGS-B, every face of the box (σ_r² = 0, σ_i² = 0, both) is fitted too and
the best criterion wins; a component at zero is reported as a boundary estimate, with a one-sided
upper bound instead of a two-sided interval.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
from scipy import linalg, optimize, sparse, special, stats
from scipy.sparse import linalg as splinalg

log = logging.getLogger(__name__)

Z95 = float(stats.norm.ppf(0.975))
# 95% one-sided likelihood-ratio bound at a boundary: the statistic is a 50:50 mixture of χ²₀ and
# χ²₁ (Self & Liang 1987), whose 95% point is the 90% point of χ²₁.
BOUNDARY_LR = float(stats.chi2.ppf(0.90, 1))
DENSE_MAX = 4000
# A λ below this is zero for reporting: the variance it implies is < 1e-8 of the residual's.
ZERO_LAMBDA = 1e-4


def _indicator(codes: np.ndarray, n_levels: int) -> sparse.csr_array:
    n = len(codes)
    return sparse.csr_array((np.ones(n), (np.arange(n), codes)), shape=(n, n_levels))


class _Crossed:
    """Two crossed grouping factors and the weighted cross-products the solvers need.

    The Schur complement is on the smaller factor ("small"); the larger one ("big") has a
    diagonal block. S = diag(a) - s² Σ_big (1/d_j) n_j n_j' where n_j is the big level's column of
    the small x big count matrix N: its entries are accumulated from precomputed index pairs, so
    no sparse-sparse product (slow once S is dense) is formed per evaluation."""

    def __init__(self, rater: np.ndarray, item: np.ndarray):
        self.rc = np.asarray(rater)
        self.ic = np.asarray(item)
        self.nr = int(self.rc.max()) + 1
        self.ni = int(self.ic.max()) + 1
        self.n = len(self.rc)
        self.Zr = _indicator(self.rc, self.nr)
        self.Zi = _indicator(self.ic, self.ni)
        self.small_is_rater = self.nr <= self.ni
        sc, bc = (self.rc, self.ic) if self.small_is_rater else (self.ic, self.rc)
        self.n_small = int(sc.max()) + 1
        self.n_big = int(bc.max()) + 1
        # Distinct (small, big) cells, sorted by big level; obs -> cell.
        key = bc.astype(np.int64) * self.n_small + sc
        cells, self.obs_cell = np.unique(key, return_inverse=True)
        self.cell_big = (cells // self.n_small).astype(np.int64)
        self.cell_small = (cells % self.n_small).astype(np.int64)
        # Every ordered pair of cells that share a big level.
        starts = np.searchsorted(self.cell_big, np.arange(self.n_big + 1))
        sizes = np.diff(starts)
        pa, pb = [], []
        for k in np.unique(sizes[sizes > 0]):
            levels = np.flatnonzero(sizes == k)
            base = starts[levels][:, None]
            idx = base + np.arange(k)[None, :]
            pa.append(np.repeat(idx, k, axis=1).ravel())
            pb.append(np.tile(idx, (1, k)).ravel())
        self.pair_a = np.concatenate(pa) if pa else np.zeros(0, np.int64)
        self.pair_b = np.concatenate(pb) if pb else np.zeros(0, np.int64)
        self.pair_flat = self.cell_small[self.pair_a] * self.n_small + self.cell_small[self.pair_b]
        self.pair_big = self.cell_big[self.pair_a]

    def weighted(self, w: np.ndarray | None):
        """(per small level total weight, per big level total weight, per cell weight)."""
        if w is None:
            w = np.ones(self.n)
        sc, bc = (self.rc, self.ic) if self.small_is_rater else (self.ic, self.rc)
        Ds = np.bincount(sc, weights=w, minlength=self.n_small)
        Db = np.bincount(bc, weights=w, minlength=self.n_big)
        cellw = np.bincount(self.obs_cell, weights=w, minlength=len(self.cell_big))
        return Ds, Db, cellw

    def Zt(self, M: np.ndarray, w: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(Z_r' W M, Z_i' W M) for a vector or an n x k matrix."""
        Mw = M if w is None else (M * (w if M.ndim == 1 else w[:, None]))
        return self.Zr.T @ Mw, self.Zi.T @ Mw


@dataclass
class _Factor:
    logdet: float
    solve: object  # (B_r, B_i) -> (C_r, C_i)


def _factor(lam: tuple[float, float], g: _Crossed, weighted) -> _Factor:
    """Factor A = I + ΛZ'WZΛ = [[1 + λr² Dr, λrλi N], [λrλi N', 1 + λi² Di]]."""
    Ds, Db, cellw = weighted
    ls, lb = (lam[0], lam[1]) if g.small_is_rater else (lam[1], lam[0])
    a = 1.0 + ls * ls * Ds
    d = 1.0 + lb * lb * Db
    s = ls * lb
    if s == 0.0:
        logdet = float(np.log(a).sum() + np.log(d).sum())

        def solve0(Bs, Bb):
            return Bs / (a if Bs.ndim == 1 else a[:, None]), Bb / (d if Bb.ndim == 1 else d[:, None])
        return _Factor(logdet, _swap(solve0, g.small_is_rater))
    m = g.n_small
    N = sparse.csr_array((cellw, (g.cell_small, g.cell_big)), shape=(m, g.n_big))
    vals = cellw[g.pair_a] * cellw[g.pair_b] / d[g.pair_big] * (-s * s)
    if m <= DENSE_MAX:
        Sd = np.bincount(g.pair_flat, weights=vals, minlength=m * m).reshape(m, m)
        Sd[np.diag_indices(m)] += a
        cf = linalg.cho_factor(Sd, lower=True, check_finite=False)
        logdet_s = 2.0 * float(np.log(np.diag(cf[0])).sum())

        def solve_s(b):
            return linalg.cho_solve(cf, b, check_finite=False)
    else:
        Ss = sparse.coo_array((vals, (g.pair_flat // m, g.pair_flat % m)), shape=(m, m)).tocsc()
        Ss = (Ss + sparse.diags_array(a)).tocsc()
        lu = splinalg.splu(Ss, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                           options={"SymmetricMode": True})
        logdet_s = float(np.log(np.abs(lu.U.diagonal())).sum())

        def solve_s(b):
            return lu.solve(b)
    logdet = float(np.log(d).sum()) + logdet_s

    def solve(Bs, Bb):
        Bb_d = Bb / (d if Bb.ndim == 1 else d[:, None])
        Cs = solve_s(Bs - s * (N @ Bb_d))
        Cb = (Bb - s * (N.T @ Cs)) / (d if Bb.ndim == 1 else d[:, None])
        return Cs, Cb
    return _Factor(logdet, _swap(solve, g.small_is_rater))


def _swap(solve, small_is_rater: bool):
    if small_is_rater:
        return solve
    return lambda Br, Bi: tuple(reversed(solve(Bi, Br)))


@dataclass
class CrossedFit:
    """A fitted crossed random-intercept model. Variances are on the model's scale (rating², or
    logit² for the GLMM, whose residual variance is fixed at π²/3 by the logistic link)."""

    model: str                      # "lmm-reml" | "glmm-laplace"
    beta: np.ndarray
    cov_beta: np.ndarray
    var_rater: float
    var_item: float
    var_resid: float
    criterion: float                # REML deviance (−2 log restricted likelihood) or Laplace deviance
    n: int
    n_raters: int
    n_items: int
    boundary: tuple[str, ...] = ()  # components estimated at exactly zero
    var_ci: dict[str, tuple[float, float]] = field(default_factory=dict)
    converged: bool = True
    evaluations: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def se(self) -> np.ndarray:
        return np.sqrt(np.clip(np.diag(self.cov_beta), 0.0, None))

    def describe(self) -> str:
        names = {"rater": self.var_rater, "item": self.var_item}
        parts = []
        for k, v in names.items():
            lo, hi = self.var_ci.get(k, (math.nan, math.nan))
            if k in self.boundary:
                parts.append(f"{k} 0 (boundary; 95% upper bound {hi:.3g})")
            else:
                parts.append(f"{k} {v:.3g} [{lo:.3g}, {hi:.3g}]")
        if self.model == "lmm-reml":
            parts.append(f"residual {self.var_resid:.3g}")
        return "variance " + ", ".join(parts)


# ----------------------------------------------------------------------------------------------
# Linear mixed model, exact REML


class _LMM:
    def __init__(self, y, X, rater, item):
        self.g = _Crossed(rater, item)
        self.y = np.asarray(y, float)
        self.X = np.asarray(X, float)
        self.n, self.p = self.X.shape
        Xy = np.column_stack([self.X, self.y])
        self.XytXy = Xy.T @ Xy
        self.ZtXy = self.g.Zt(Xy)
        self.w1 = self.g.weighted(None)
        self.evals = 0

    def parts(self, lam):
        """(logdet A, logdet P, rss, β, P) at λ; P = X'H⁻¹X, rss = r'H⁻¹r."""
        self.evals += 1
        lr, li = lam
        f = _factor(lam, self.g, self.w1)
        Br, Bi = lr * self.ZtXy[0], li * self.ZtXy[1]
        Cr, Ci = f.solve(Br, Bi)
        M = self.XytXy - Br.T @ Cr - Bi.T @ Ci
        p = self.p
        P, c = M[:p, :p], M[:p, p]
        cP = linalg.cho_factor(P, lower=True, check_finite=False)
        beta = linalg.cho_solve(cP, c, check_finite=False)
        rss = float(M[p, p] - c @ beta)
        return f.logdet, 2.0 * float(np.log(np.diag(cP[0])).sum()), max(rss, 1e-300), beta, P

    def reml(self, lam) -> float:
        lda, ldp, rss, _, _ = self.parts(lam)
        m = self.n - self.p
        return lda + ldp + m * (1.0 + math.log(2 * math.pi * rss / m))


def _optimise_box(fun, starts: list[tuple[float, float]], upper: float = 1e3):
    """Minimise fun(λ) over λ ≥ 0: L-BFGS-B from each start, then each face of the box (one or
    both components at zero) on its own, so a boundary optimum is found exactly rather than
    approached (L-BFGS-B on the open problem stops short of it while reporting success)."""
    best = (math.inf, None, True)
    for s in starts:
        r = optimize.minimize(fun, np.asarray(s, float), method="L-BFGS-B",
                              bounds=[(0.0, upper)] * 2, options={"ftol": 1e-13, "gtol": 1e-9})
        if r.fun < best[0]:
            best = (float(r.fun), np.asarray(r.x, float), bool(r.success))
    x0 = best[1]
    for k in (0, 1):
        # Face: component k fixed at 0, the other optimised in one dimension.
        other = 1 - k

        def g(t, k=k, other=other):
            lam = [0.0, 0.0]
            lam[other] = t
            return fun(lam)
        hi = max(4.0 * (x0[other] if x0 is not None else 1.0), 1.0)
        r = optimize.minimize_scalar(g, bounds=(0.0, hi), method="bounded",
                                     options={"xatol": 1e-7})
        cands = [(float(r.fun), float(r.x)), (g(0.0), 0.0)]
        for val, t in cands:
            if val < best[0] - 1e-10:
                lam = np.zeros(2)
                lam[other] = t
                best = (val, lam, True)
    x = best[1].copy()
    x[x < ZERO_LAMBDA] = 0.0
    return fun(x), x, best[2]


def _mom_start(g: _Crossed, y: np.ndarray) -> tuple[float, float]:
    """A rough start: between-group variance of the means over the residual, per factor."""
    out = []
    for codes, n_lev in ((g.rc, g.nr), (g.ic, g.ni)):
        cnt = np.bincount(codes, minlength=n_lev)
        mean = np.bincount(codes, weights=y, minlength=n_lev) / np.maximum(cnt, 1)
        resid = y - mean[codes]
        within = resid.var() if len(y) > n_lev else y.var()
        between = max(mean[cnt > 0].var() - within / max(cnt[cnt > 0].mean(), 1), 0.0)
        out.append(math.sqrt(between / max(within, 1e-12)))
    return out[0], out[1]


def _blas_limit(g: _Crossed):
    """One BLAS thread for Schur complements up to a few thousand rows: they factor in
    milliseconds, and on a busy machine OpenBLAS's spinning threads made a 300 x 300 Cholesky
    20 times slower than one thread (measured here, 2 cores shared)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1 if g.n_small <= 2000 else None, user_api="blas")


def fit_lmm(y, X, rater, item, var_intervals: bool = True) -> CrossedFit:
    """Exact REML for crossed random rater and item intercepts (see module docstring). `rater`
    and `item` are integer codes 0..k-1."""
    m = _LMM(y, X, np.asarray(rater), np.asarray(item))
    with _blas_limit(m.g):
        return _fit_lmm(m, var_intervals)


def _fit_lmm(m: "_LMM", var_intervals: bool) -> CrossedFit:
    s0 = _mom_start(m.g, m.y)
    crit, lam, ok = _optimise_box(m.reml, [s0, (0.5, 0.5)])
    lda, ldp, rss, beta, P = m.parts(lam)
    s2 = rss / (m.n - m.p)
    cov = s2 * np.linalg.inv(P)
    vr, vi = lam[0] ** 2 * s2, lam[1] ** 2 * s2
    boundary = tuple(k for k, v in (("rater", lam[0]), ("item", lam[1])) if v == 0.0)
    fit = CrossedFit("lmm-reml", beta, cov, vr, vi, s2, crit, m.n, m.g.nr, m.g.ni, boundary,
                     converged=ok)
    if var_intervals:
        fit.var_ci = _lmm_var_ci(m, lam, s2, boundary, crit)
    fit.evaluations = m.evals
    return fit


def _lmm_var_ci(m: _LMM, lam, s2, boundary, crit) -> dict[str, tuple[float, float]]:
    """Likelihood-ratio 95% intervals for each variance component: the values of its ratio where
    the REML deviance rises by χ²₁(0.95) = 3.84 (the other ratio held at its estimate, σ²
    profiled), as variances; at a boundary estimate the one-sided bound of the χ²₀:χ²₁ mixture
    (2.71), lower end 0. Wald intervals on the log scale were unusable for small groups counts
    (a rater variance of 0.001 from 3 raters got [0.000, 1345])."""
    out: dict[str, tuple[float, float]] = {}
    crit_two = float(stats.chi2.ppf(0.95, 1))
    dof = m.n - m.p
    for k in range(2):
        at_zero = lam[k] == 0.0
        c = BOUNDARY_LR if at_zero else crit_two

        def g(t, k=k, c=c):
            x = np.array(lam, float)
            x[k] = t
            return m.reml(x) - crit - c

        def var_at(t, k=k):
            if not math.isfinite(t):
                return math.inf
            x = np.array(lam, float)
            x[k] = t
            return t * t * m.parts(x)[2] / dof
        hi = _upper_root(g, 1e3, start=max(float(lam[k]), 0.05))
        lo = 0.0
        if not at_zero and g(0.0) > 0:
            lo = optimize.brentq(g, 0.0, float(lam[k]), xtol=1e-8)
        out[("rater", "item")[k]] = (var_at(lo), var_at(hi))
    return out


def _upper_root(g, limit: float, start: float = 0.0) -> float:
    """The root of g above `start` (g(start) < 0); inf when g stays below 0 up to `limit`."""
    hi = max(2 * start, 0.1)
    while g(hi) < 0 and hi < limit:
        hi *= 2
    return optimize.brentq(g, start, hi, xtol=1e-8) if g(hi) > 0 else math.inf


def _hessian(f, x, h):
    k = len(x)
    H = np.zeros((k, k))
    f0 = f(x)
    for i in range(k):
        for j in range(i, k):
            ei = np.zeros(k)
            ej = np.zeros(k)
            ei[i] = h
            ej[j] = h
            if i == j:
                H[i, i] = (f(x + ei) - 2 * f0 + f(x - ei)) / (h * h)
            else:
                H[i, j] = H[j, i] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej)
                                     + f(x - ei - ej)) / (4 * h * h)
    return H


# ----------------------------------------------------------------------------------------------
# Logistic mixed model, Laplace approximation


class _GLMM:
    def __init__(self, y, X, rater, item):
        self.g = _Crossed(rater, item)
        self.y = np.asarray(y, float)
        self.X = np.asarray(X, float)
        self.n, self.p = self.X.shape
        self.beta = np.zeros(self.p)
        self.ur = np.zeros(self.g.nr)
        self.ui = np.zeros(self.g.ni)
        self.evals = 0
        self.last_cov = None

    def _eta(self, lam, beta, ur, ui):
        return self.X @ beta + lam[0] * ur[self.g.rc] + lam[1] * ui[self.g.ic]

    def _pdev(self, eta, ur, ui):
        # −2 log Bernoulli likelihood, stable for large |η|.
        ll = self.y * eta - np.logaddexp(0.0, eta)
        return float(-2.0 * ll.sum() + ur @ ur + ui @ ui)

    def laplace(self, lam, max_iter: int = 50, tol: float = 1e-10) -> float:
        """PIRLS for (β, u) at λ from the last solution, then the Laplace deviance."""
        self.evals += 1
        lam = (float(lam[0]), float(lam[1]))
        beta, ur, ui = self.beta.copy(), self.ur.copy(), self.ui.copy()
        if lam[0] == 0:
            ur[:] = 0
        if lam[1] == 0:
            ui[:] = 0
        eta = self._eta(lam, beta, ur, ui)
        pd_old = self._pdev(eta, ur, ui)
        f = None
        for _ in range(max_iter):
            mu = special.expit(eta)
            w = np.clip(mu * (1.0 - mu), 1e-10, None)
            z = eta + (self.y - mu) / w   # working response
            f = _factor(lam, self.g, self.g.weighted(w))
            Xz = np.column_stack([self.X, z])
            ZXr, ZXi = self.g.Zt(Xz, w)
            Br, Bi = lam[0] * ZXr, lam[1] * ZXi
            Cr, Ci = f.solve(Br, Bi)
            M = Xz.T @ (Xz * w[:, None]) - Br.T @ Cr - Bi.T @ Ci
            p = self.p
            cP = linalg.cho_factor(M[:p, :p], lower=True, check_finite=False)
            nb = linalg.cho_solve(cP, M[:p, p], check_finite=False)
            nur = Cr[:, p] - Cr[:, :p] @ nb
            nui = Ci[:, p] - Ci[:, :p] @ nb
            # Step-halving keeps the penalised deviance from going up.
            step = 1.0
            while True:
                tb = beta + step * (nb - beta)
                tr = ur + step * (nur - ur)
                ti = ui + step * (nui - ui)
                teta = self._eta(lam, tb, tr, ti)
                pd_new = self._pdev(teta, tr, ti)
                if pd_new <= pd_old + 1e-10 or step < 1e-4:
                    break
                step *= 0.5
            beta, ur, ui, eta = tb, tr, ti, teta
            done = abs(pd_old - pd_new) < tol * (1.0 + abs(pd_new))
            pd_old = pd_new
            if done:
                break
        # Factor at the final weights for log|A| and the fixed-effect covariance.
        mu = special.expit(eta)
        w = np.clip(mu * (1.0 - mu), 1e-10, None)
        f = _factor(lam, self.g, self.g.weighted(w))
        self.beta, self.ur, self.ui = beta, ur, ui
        ZXr, ZXi = self.g.Zt(self.X, w)
        Br, Bi = lam[0] * ZXr, lam[1] * ZXi
        Cr, Ci = f.solve(Br, Bi)
        info = self.X.T @ (self.X * w[:, None]) - Br.T @ Cr - Bi.T @ Ci
        self.last_cov = info
        return pd_old + f.logdet


def fit_glmm(y, X, rater, item, var_intervals: bool = True) -> CrossedFit:
    """Laplace-approximate logistic GLMM with crossed random rater and item intercepts."""
    m = _GLMM(y, X, np.asarray(rater), np.asarray(item))
    with _blas_limit(m.g):
        return _fit_glmm(m, var_intervals)


def _fit_glmm(m: "_GLMM", var_intervals: bool) -> CrossedFit:
    crit, lam, ok = _optimise_box(m.laplace, [(0.5, 0.5)], upper=50.0)
    m.laplace(lam)
    cov = np.linalg.inv(m.last_cov)
    boundary = tuple(k for k, v in (("rater", lam[0]), ("item", lam[1])) if v == 0.0)
    fit = CrossedFit("glmm-laplace", m.beta.copy(), cov, lam[0] ** 2, lam[1] ** 2,
                     math.pi ** 2 / 3, crit, m.n, m.g.nr, m.g.ni, boundary, converged=ok)
    if var_intervals:
        fit.var_ci = _glmm_var_ci(m, lam, crit)
        m.laplace(lam)
    fit.evaluations = m.evals
    return fit


def _glmm_var_ci(m: _GLMM, lam, crit) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    interior = [k for k in range(2) if lam[k] > 0]
    state = (m.beta.copy(), m.ur.copy(), m.ui.copy())
    if interior:
        lv = np.log(np.asarray(lam, float)[interior] ** 2)

        def f(sub):
            x = np.array(lam, float)
            x[interior] = np.exp(0.5 * np.asarray(sub))
            return m.laplace(x)
        H = _hessian(f, lv, 1e-3)
        try:
            cov = 2.0 * np.linalg.inv(H)
            for j, k in enumerate(interior):
                sd = math.sqrt(max(cov[j, j], 0.0))
                out[("rater", "item")[k]] = (math.exp(lv[j] - Z95 * sd), math.exp(lv[j] + Z95 * sd))
        except np.linalg.LinAlgError:
            pass
    for k in range(2):
        if lam[k] == 0.0:
            def g(t, k=k):
                x = np.array(lam, float)
                x[k] = t
                return m.laplace(x) - crit - BOUNDARY_LR
            ub = _upper_root(g, 50.0)
            out[("rater", "item")[k]] = (0.0, ub * ub)
    m.beta, m.ur, m.ui = state
    return out
