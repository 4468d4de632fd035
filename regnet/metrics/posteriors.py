"""KL divergence and Inception Score of a classifier's class posteriors (PANNs' 527 AudioSet
classes), as av-benchmark reports them, with bootstrap intervals over clips.

- **KL per clip**, the generated clip against its reference, from the classifier's logits:
  ``sum_c p_ref,c * (log p_ref,c - log(p_gen,c + 1e-6))`` — ``torch.nn.functional.kl_div`` of
  ``log(p_gen + EPS)`` against the target ``p_ref`` — with ``p = softmax(logits)`` ("softmax", the
  variant av-benchmark's KL-PANNS-softmax and SpecVQGAN / Diff-Foley use) or ``p = sigmoid(logits)``
  element-wise ("sigmoid", AudioLDM-eval's KL_Sigmoid: the sigmoids are not renormalised, so it is a
  sum of per-class terms, not a Bernoulli KL). av-benchmark's single number is the mean over clips
  (``reduction="sum"`` / N); here the per-clip values are kept and summarised by their mean.
- **Inception Score** of a system's generated clips (torch-fidelity's ``isc_features_to_metric``,
  which av-benchmark calls with ``splits=10, samples_shuffle=True, rng_seed=2020``): shuffle the
  clips with ``np.random.RandomState(2020)``, cut them into ``splits`` chunks, and per chunk
  ``exp(mean_x KL(p(y|x) || mean_x p(y|x)))`` with softmax posteriors; the score is the chunks'
  mean (and their population std).
"""

from __future__ import annotations

import math

import numpy as np

from regnet.metrics.fad import BootstrapCI, centred_interval

KL_EPS = 1e-6  # av-benchmark / AudioLDM-eval add this to the generated probabilities
IS_SPLITS = 10
IS_SEED = 2020


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def sigmoid(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # = 1 / (1 + exp(-z)) without overflow


def _kl_rows(p_ref: np.ndarray, p_gen: np.ndarray) -> np.ndarray:
    # kl_div's convention: a zero target contributes 0 (not 0 * log 0 = nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p_ref > 0, p_ref * (np.log(p_ref) - np.log(p_gen + KL_EPS)), 0.0)
    return terms.sum(axis=-1)


def kl_softmax(ref_logits: np.ndarray, gen_logits: np.ndarray) -> np.ndarray:
    """Per-clip KL(softmax(ref) || softmax(gen) + EPS) of logits [N, C]."""
    return _kl_rows(softmax(ref_logits), softmax(gen_logits))


def kl_sigmoid(ref_logits: np.ndarray, gen_logits: np.ndarray) -> np.ndarray:
    """Per-clip sum_c s_ref log(s_ref / (s_gen + EPS)) with s = sigmoid(logits) [N, C]."""
    return _kl_rows(sigmoid(ref_logits), sigmoid(gen_logits))


def inception_score(logits: np.ndarray, splits: int = IS_SPLITS, shuffle: bool = True,
                    seed: int = IS_SEED) -> tuple[float, float]:
    """(mean, std) of the Inception Score over ``splits`` chunks of the clips' logits [N, C].
    With fewer clips than splits every chunk would be empty or a single clip (IS 1 by definition),
    so the split count drops to ``max(1, N // 2)``; NaN with no clip."""
    x = np.asarray(logits, dtype=np.float64)
    n = len(x)
    if n == 0:
        return math.nan, math.nan
    splits = max(1, min(splits, n // 2))
    if shuffle:
        x = x[np.random.RandomState(seed).permutation(n)]
    p, log_p = softmax(x), log_softmax(x)
    scores = []
    for i in range(splits):
        lo, hi = i * n // splits, (i + 1) * n // splits
        q = p[lo:hi].mean(axis=0, keepdims=True)
        kl = (p[lo:hi] * (log_p[lo:hi] - np.log(q))).sum(axis=1).mean()
        scores.append(math.exp(kl))
    return float(np.mean(scores)), float(np.std(scores))


def bootstrap_mean(values: np.ndarray, n_boot: int = 1000, seed: int = 0,
                   level: float = 0.95) -> BootstrapCI:
    """Mean of the finite per-clip values with a percentile bootstrap interval."""
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n == 0:
        return BootstrapCI(math.nan, math.nan, math.nan, 0, 0)
    if n == 1 or n_boot < 1:
        return BootstrapCI(float(x.mean()), math.nan, math.nan, n, 0)
    rng = np.random.default_rng(seed)
    reps = x[rng.integers(0, n, (n_boot, n))].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    return BootstrapCI(float(x.mean()), float(np.quantile(reps, alpha)),
                       float(np.quantile(reps, 1 - alpha)), n, n_boot)


def bootstrap_inception_score(logits: np.ndarray, n_boot: int = 200, seed: int = 0,
                              level: float = 0.95, splits: int = IS_SPLITS) -> BootstrapCI:
    """IS of the whole set (as above) with a bootstrap interval over clips, re-centred on the point
    value as FD's (`regnet.metrics.fad.centred_interval`): repeated clips in a resample make
    p(y) less varied and bias IS by themselves."""
    x = np.asarray(logits, dtype=np.float64)
    n = len(x)
    value, _ = inception_score(x, splits)
    if n < 2 or n_boot < 1:
        return BootstrapCI(value, math.nan, math.nan, n, 0)
    rng = np.random.default_rng(seed)
    reps = np.array([inception_score(x[rng.integers(0, n, n)], splits)[0] for _ in range(n_boot)])
    return centred_interval(value, reps, level, n)
