"""Fréchet distance (FD / FAD) between two sets of embeddings, and its bootstrap interval.

The distance between Gaussians fitted to the two sets (FID's and FAD's formula, the one
av-benchmark's ``compute_fd`` and pytorch-fid use):

    FD = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))

``S`` are the unbiased sample covariances (``np.cov``). The trace of the matrix square root is the
only hard term; it is computed here exactly, without ``scipy.linalg.sqrtm`` (slow for D = 2048 and
inaccurate when S1 S2 is singular, which it always is with fewer clips than dimensions):

- the non-zero eigenvalues of S1 S2 = A'A B'B / (c1 c2) (A, B the centred rows, c = n - 1) are
  those of (A B')(A B')' / (c1 c2), i.e. the squared singular values of A B' / sqrt(c1 c2); so
  tr((S1 S2)^(1/2)) is the nuclear norm of that n1 x n2 matrix (used when n1 n2 <= D^2);
- otherwise tr((S1 S2)^(1/2)) = tr((S1^(1/2) S2 S1^(1/2))^(1/2)), the sum of square roots of the
  eigenvalues of a symmetric positive semi-definite D x D matrix (``eigh``).

tests/regnet/metrics/test_fad.py checks both against ``scipy.linalg.sqrtm``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def _sqrt_trace(a: np.ndarray, b: np.ndarray) -> float:
    """tr((S_a S_b)^(1/2)) from the centred rows ``a`` [n1, D] and ``b`` [n2, D]."""
    c1, c2 = len(a) - 1, len(b) - 1
    d = a.shape[1]
    if len(a) * len(b) <= d * d:
        s = np.linalg.svd(a @ b.T, compute_uv=False)
        return float(s.sum() / math.sqrt(c1 * c2))
    s1 = a.T @ a / c1
    s2 = b.T @ b / c2
    w, v = np.linalg.eigh(s1)
    root1 = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
    m = root1 @ s2 @ root1
    ev = np.linalg.eigvalsh((m + m.T) / 2.0)
    return float(np.sqrt(np.clip(ev, 0.0, None)).sum())


def frechet_distance(x: np.ndarray, y: np.ndarray) -> float:
    """FD between the Gaussians fitted to ``x`` [n1, D] and ``y`` [n2, D]; NaN when either set has
    fewer than two rows (no covariance)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if y.ndim == 1:
        y = y[:, None]
    if len(x) < 2 or len(y) < 2:
        return math.nan
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"embedding sizes differ: {x.shape[1]} vs {y.shape[1]}")
    mu1, mu2 = x.mean(0), y.mean(0)
    a, b = x - mu1, y - mu2
    tr1 = float((a * a).sum() / (len(a) - 1))
    tr2 = float((b * b).sum() / (len(b) - 1))
    diff = mu1 - mu2
    fd = float(diff @ diff) + tr1 + tr2 - 2.0 * _sqrt_trace(a, b)
    return max(0.0, fd)


@dataclass(frozen=True)
class BootstrapCI:
    """A statistic on the whole set and its percentile bootstrap interval over clips."""

    value: float
    low: float
    high: float
    n: int  # clips (the resampled unit)
    n_boot: int


def bootstrap_frechet(gen: list[np.ndarray], ref: list[np.ndarray], n_boot: int = 200,
                      seed: int = 0, level: float = 0.95) -> BootstrapCI:
    """FD of the stacked rows of ``gen`` against those of ``ref`` with a paired bootstrap over
    clips: ``gen[k]`` and ``ref[k]`` are the embedding rows of clip k and of its reference (one row
    for a clip-level embedder, one per frame for VGGish), and each replicate draws clips with
    replacement, keeping every pair together. FD is biased upwards in small sets, and a resample
    (with repeated clips, about 0.63 n distinct) is smaller in effect, so its replicates sit above
    the point value (far above with n < D: 200 clips of 2048 dims put every replicate higher); the
    interval is therefore the replicates' percentiles re-centred on the point value
    (``value + q - mean(replicates)``): the sampling spread of FD at this n, for comparing systems
    measured on equally many clips, not an interval for the population FD."""
    n = len(gen)
    if n != len(ref):
        raise ValueError("gen and ref must list the same clips")
    value = frechet_distance(_stack(gen), _stack(ref))
    if n < 2 or not np.isfinite(value) or n_boot < 1:
        return BootstrapCI(value, math.nan, math.nan, n, 0)
    rng = np.random.default_rng(seed)
    reps = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        reps.append(frechet_distance(_stack([gen[i] for i in idx]), _stack([ref[i] for i in idx])))
    reps = np.asarray(reps)
    reps = reps[np.isfinite(reps)]
    if reps.size == 0:
        return BootstrapCI(value, math.nan, math.nan, n, 0)
    return centred_interval(value, reps, level, n)


def centred_interval(value: float, reps: np.ndarray, level: float, n: int) -> BootstrapCI:
    """Percentile interval of bootstrap replicates of a set statistic, shifted so the replicates'
    mean sits on the point value (see `bootstrap_frechet`)."""
    alpha = (1.0 - level) / 2.0
    shift = value - float(np.mean(reps))
    return BootstrapCI(value, float(np.quantile(reps, alpha)) + shift,
                       float(np.quantile(reps, 1 - alpha)) + shift, n, int(reps.size))


def _stack(rows: list[np.ndarray]) -> np.ndarray:
    rows = [np.atleast_2d(np.asarray(r, dtype=np.float64)) for r in rows if np.size(r)]
    return np.concatenate(rows, axis=0) if rows else np.zeros((0, 1))
