"""Metrics on constructed signals whose answer is known: identical, shifted by 200 ms, silent."""

from __future__ import annotations

import math

import numpy as np
import pytest

from regnet.config import preset
from regnet.metrics.embedding import frechet_distance, kl_divergence
from regnet.metrics.envelope import envelope_correlation
from regnet.metrics.mel_l2 import mel_l2
from regnet.metrics.onsets import Onsets, detect_onsets, match_count, onset_ap, score_onsets
from regnet.metrics.stats import mean_ci

from tests.helpers.media import bursts

EVENTS = np.array([0.3, 0.8, 1.3, 1.7])


@pytest.fixture(scope="module")
def cfg():
    return preset("tiny").data  # 2 s clips


def test_identical_audio_gives_zero_l2_and_perfect_onsets(cfg):
    a = bursts(EVENTS)
    assert mel_l2(a, a, cfg) == 0.0
    det = detect_onsets(a, cfg.sample_rate, cfg.hop_length)
    s = score_onsets(det, EVENTS)
    assert (s.precision, s.recall, s.f1, s.accuracy, s.ap) == (1.0, 1.0, 1.0, 1.0, 1.0)
    # against onsets detected in the same audio, too
    assert score_onsets(det, det.times_s).f1 == 1.0
    assert envelope_correlation(a, a, cfg) == pytest.approx(1.0)


def test_shift_by_200ms_loses_onset_f1_while_l2_stays_finite(cfg):
    a = bursts(EVENTS)
    shifted = bursts(EVENTS + 0.2)
    l2 = mel_l2(shifted, a, cfg)
    assert math.isfinite(l2) and l2 > 1.0
    s = score_onsets(detect_onsets(shifted, cfg.sample_rate, cfg.hop_length), EVENTS)
    assert s.f1 == 0.0 and s.precision == 0.0 and s.recall == 0.0
    assert s.accuracy == 1.0  # the count is still right: accuracy does not look at timing
    assert s.ap < 1.0
    # a 200 ms tolerance forgives the shift
    assert score_onsets(detect_onsets(shifted, cfg.sample_rate, cfg.hop_length), EVENTS, 0.25).f1 == 1.0
    assert envelope_correlation(shifted, a, cfg) < 0.5


def test_silence_gives_zero_recall(cfg):
    silent = np.zeros(int(2 * cfg.sample_rate), np.float32)
    s = score_onsets(detect_onsets(silent, cfg.sample_rate), EVENTS)
    assert s.recall == 0.0 and s.f1 == 0.0 and s.n_detected == 0 and s.ap == 0.0
    assert math.isnan(s.precision)  # nothing detected: precision undefined, not perfect
    assert math.isfinite(mel_l2(silent, bursts(EVENTS), cfg))
    assert math.isnan(envelope_correlation(silent, bursts(EVENTS), cfg))
    both = score_onsets(detect_onsets(silent, cfg.sample_rate), [])
    assert (both.precision, both.recall, both.f1, both.accuracy) == (1.0, 1.0, 1.0, 1.0)


def test_extra_sound_lowers_precision_not_recall(cfg):
    extra = bursts(list(EVENTS) + [1.05])
    s = score_onsets(detect_onsets(extra, cfg.sample_rate, cfg.hop_length), EVENTS)
    assert s.recall == 1.0 and s.precision == pytest.approx(0.8) and s.accuracy == 0.0


def test_matching_is_one_to_one_and_maximal():
    # greedy nearest matching would take 0.30->0.34 and leave 0.26 unmatched; the optimum pairs both
    assert match_count([0.26, 0.34], [0.30, 0.38], 0.05) == 2
    assert match_count([0.30, 0.31, 0.32], [0.30], 0.05) == 1
    assert match_count([], [0.3], 0.05) == 0


def test_onset_ap_follows_condfoleygen_ranking():
    # two references; detections: a confident hit, a weak hit, one confident false alarm
    det = Onsets(np.array([0.10, 0.50, 0.90]), np.array([0.9, 0.3, 0.8]))
    # ranking by score: hit(0.9), false(0.8), hit(0.3) -> AP = 0.5*1 + 0.5*(2/3)
    assert onset_ap(det, np.array([0.1, 0.5]), 0.05) == pytest.approx(0.5 + 1 / 3)
    assert math.isnan(onset_ap(det, np.array([]), 0.05))


def test_mean_ci_is_t_based():
    ci = mean_ci([1.0, 2.0, 3.0, 4.0])
    assert ci.mean == 2.5 and ci.n == 4
    # t(0.975, 3) = 3.182; sd = 1.291; sem = 0.6455
    assert ci.half_width == pytest.approx(3.182446 * 1.2909944 / 2, rel=1e-5)
    assert mean_ci([np.nan, 5.0]).n == 1 and math.isnan(mean_ci([np.nan, 5.0]).low)


def test_frechet_and_kl():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((200, 4))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    b = a + np.array([3.0, 0, 0, 0])
    assert frechet_distance(a, b) == pytest.approx(9.0, rel=1e-6)
    p = np.array([[0.7, 0.3], [0.5, 0.5]])
    kl = kl_divergence(p, p[::-1])
    assert kl[0] == pytest.approx(0.7 * math.log(0.7 / 0.5) + 0.3 * math.log(0.3 / 0.5))
    assert kl_divergence(p, p) == pytest.approx([0.0, 0.0])
