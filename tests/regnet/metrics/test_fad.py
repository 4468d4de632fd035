"""The metric core: Fréchet distance against an independent scipy ``sqrtm`` computation, KL
(softmax / sigmoid) and Inception Score against hand computations on fixed posteriors, and the
bootstrap intervals.

`fadtk` and `frechet-audio-distance` cannot be installed here (the first pins numpy<2, the second
imports torchaudio, laion_clap and encodec at import); both compute FD with pytorch-fid's scipy
``sqrtm`` formula, which is the reference below.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import linalg

from regnet.metrics import fad
from regnet.metrics.fad import bootstrap_frechet, frechet_distance
from regnet.metrics.posteriors import (bootstrap_inception_score, bootstrap_mean, inception_score,
                                       kl_sigmoid, kl_softmax)


def _fd_sqrtm(x, y):
    """pytorch-fid / frechet-audio-distance's calculate_frechet_distance, written out."""
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean, _ = linalg.sqrtm(s1.dot(s2), disp=False)
    covmean = covmean.real
    diff = mu1 - mu2
    return diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)


@pytest.mark.parametrize("d, n1, n2", [(6, 40, 55), (24, 60, 48)])
def test_fd_equals_scipy_sqrtm(d, n1, n2):
    rng = np.random.default_rng(d)
    mix = rng.normal(size=(d, d))
    x = rng.normal(size=(n1, d)) @ mix
    y = rng.normal(size=(n2, d)) @ mix * 1.3 + 0.5
    want = _fd_sqrtm(x, y)
    assert frechet_distance(x, y) == pytest.approx(want, abs=1e-6)
    # both exact routes of the sqrt-trace agree with sqrtm, whichever the size picks
    a, b = x - x.mean(0), y - y.mean(0)
    want_tr = np.trace(linalg.sqrtm(np.cov(x, rowvar=False) @ np.cov(y, rowvar=False)).real)
    c1, c2 = n1 - 1, n2 - 1
    nuclear = np.linalg.svd(a @ b.T, compute_uv=False).sum() / math.sqrt(c1 * c2)
    assert nuclear == pytest.approx(want_tr, abs=1e-6)
    assert fad._sqrt_trace(a, b) == pytest.approx(want_tr, abs=1e-6)
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)


def test_fd_with_fewer_clips_than_dimensions_matches_the_dense_route():
    """n < D (every real FD-PANN table: 2048 dims): S1 S2 is singular; the nuclear-norm route
    (picked here) equals the D x D eigen route, and sqrtm to its own accuracy."""
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(12, 64)), rng.normal(size=(15, 64)) + 0.2
    a, b = x - x.mean(0), y - y.mean(0)
    s1, s2 = a.T @ a / 11, b.T @ b / 14
    w, v = np.linalg.eigh(s1)
    r = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    dense = np.sqrt(np.clip(np.linalg.eigvalsh(r @ s2 @ r), 0, None)).sum()
    # (the dense route carries sqrt(rounding) from the ~50 zero eigenvalues: ~1e-6)
    assert fad._sqrt_trace(a, b) == pytest.approx(dense, abs=1e-5)
    assert frechet_distance(x, y) == pytest.approx(_fd_sqrtm(x, y), abs=1e-4)
    assert math.isnan(frechet_distance(x[:1], y))


def test_bootstrap_frechet_pairs_clips_and_is_seeded():
    rng = np.random.default_rng(0)
    gen = [rng.normal(size=(3, 4)) + 1.0 for _ in range(20)]  # 3 frames per clip (VGGish-like)
    ref = [rng.normal(size=(3, 4)) for _ in range(20)]
    ci = bootstrap_frechet(gen, ref, n_boot=50, seed=1)
    assert ci.value == pytest.approx(frechet_distance(np.vstack(gen), np.vstack(ref)), abs=1e-12)
    assert ci.low < ci.value < ci.high and ci.n == 20 and ci.n_boot == 50
    assert bootstrap_frechet(gen, ref, n_boot=50, seed=1) == ci
    same = bootstrap_frechet(ref, ref, n_boot=20, seed=1)
    assert same.value == pytest.approx(0.0, abs=1e-9) and same.high == pytest.approx(0.0, abs=1e-9)


# Fixed logits: 3 clips x 4 classes.
REF = np.array([[2.0, 0.0, -1.0, 0.5], [0.0, 0.0, 0.0, 0.0], [-3.0, 4.0, 1.0, -2.0]])
GEN = np.array([[1.0, 1.0, -1.0, 0.0], [3.0, -1.0, 0.0, 0.0], [-3.0, 4.0, 1.0, -2.0]])


def test_kl_softmax_and_sigmoid_by_hand_and_as_audioldm_eval():
    def softmax(row):
        e = [math.exp(v) for v in row]
        return [v / sum(e) for v in e]

    def sig(row):
        return [1 / (1 + math.exp(-v)) for v in row]

    for fn, post in ((kl_softmax, softmax), (kl_sigmoid, sig)):
        want = [sum(p * (math.log(p) - math.log(q + 1e-6)) for p, q in zip(post(r), post(g)))
                for r, g in zip(REF, GEN)]
        got = fn(REF, GEN)
        assert got == pytest.approx(want, abs=1e-12)
    # clip 2 is identical: only the EPS term remains
    assert kl_softmax(REF, GEN)[2] == pytest.approx(0.0, abs=1e-5)
    # av-benchmark / AudioLDM-eval: kl_div(log(p_gen + EPS), p_ref, reduction="sum") / N
    r, g = torch.tensor(REF), torch.tensor(GEN)
    ref_soft = torch.nn.functional.kl_div((g.softmax(1) + 1e-6).log(), r.softmax(1), reduction="sum") / 3
    ref_sig = torch.nn.functional.kl_div((g.sigmoid() + 1e-6).log(), r.sigmoid(), reduction="sum") / 3
    assert kl_softmax(REF, GEN).mean() == pytest.approx(float(ref_soft), abs=1e-9)
    assert kl_sigmoid(REF, GEN).mean() == pytest.approx(float(ref_sig), abs=1e-9)


def test_inception_score_by_hand_and_as_torch_fidelity():
    # confident, each in its own class -> IS = C; identical posteriors -> IS = 1
    sharp = np.eye(4) * 50.0
    assert inception_score(np.vstack([sharp] * 10), splits=1)[0] == pytest.approx(4.0, rel=1e-6)
    assert inception_score(np.tile([1.0, 2.0, 3.0, 4.0], (30, 1)))[0] == pytest.approx(1.0, abs=1e-12)
    # one split, by hand: exp(mean_x KL(p(y|x) || p(y)))
    p = [[math.exp(v) / sum(math.exp(u) for u in row) for v in row] for row in GEN]
    py = [sum(col) / 3 for col in zip(*p)]
    hand = math.exp(sum(sum(pi * math.log(pi / q) for pi, q in zip(row, py)) for row in p) / 3)
    assert inception_score(GEN, splits=1)[0] == pytest.approx(hand, abs=1e-12)
    # torch-fidelity's isc_features_to_metric (splits=10, shuffled with RandomState(2020))
    logits = np.random.default_rng(5).normal(size=(43, 6)) * 2
    f = torch.tensor(logits)[np.random.RandomState(2020).permutation(43)].double()
    pp, lp = f.softmax(1), f.log_softmax(1)
    scores = []
    for i in range(10):
        lo, hi = i * 43 // 10, (i + 1) * 43 // 10
        q = pp[lo:hi].mean(0, keepdim=True)
        scores.append((pp[lo:hi] * (lp[lo:hi] - q.log())).sum(1).mean().exp().item())
    mean, std = inception_score(logits)
    assert mean == pytest.approx(np.mean(scores), abs=1e-12)
    assert std == pytest.approx(np.std(scores), abs=1e-12)


def test_fd_interval_holds_the_point_value_when_n_is_below_d():
    """With fewer clips than dimensions every resample's FD is above the full set's (repeated
    clips); the re-centred interval still brackets the point value."""
    rng = np.random.default_rng(4)
    gen = list(rng.normal(size=(30, 64)) + 0.1)
    ref = list(rng.normal(size=(30, 64)))
    ci = bootstrap_frechet(gen, ref, n_boot=60, seed=0)
    reps = [frechet_distance(np.stack([gen[i] for i in idx]), np.stack([ref[i] for i in idx]))
            for idx in np.random.default_rng(0).integers(0, 30, (60, 30))]
    assert min(reps) > ci.value  # the raw percentiles would exclude it
    assert ci.low < ci.value < ci.high
    assert ci.high - ci.low == pytest.approx(np.quantile(reps, 0.975) - np.quantile(reps, 0.025))


def test_bootstrap_intervals_for_kl_and_is():
    rng = np.random.default_rng(2)
    values = rng.exponential(size=50)
    ci = bootstrap_mean(values, n_boot=500, seed=0)
    assert ci.value == pytest.approx(values.mean()) and ci.low < ci.value < ci.high
    assert bootstrap_mean(values, n_boot=500, seed=0) == ci
    one = bootstrap_mean([1.5, np.nan], n_boot=500)
    assert one.value == 1.5 and one.n == 1 and math.isnan(one.low)
    logits = rng.normal(size=(40, 5)) * 3
    isc = bootstrap_inception_score(logits, n_boot=30, seed=0)
    assert isc.value == pytest.approx(inception_score(logits)[0]) and isc.low < isc.high
