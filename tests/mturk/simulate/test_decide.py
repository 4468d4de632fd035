"""Decision logic of the simulated raters on constructed trials and metrics."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from tests.helpers.trials import make_trial

from mturk.simulate.decide import MetricTable, RaterParams, answer_trial, criterion_score

PERFECT = {"mel_l2_x100": 0.0, "onset_precision": 1.0, "onset_recall": 1.0, "onset_f1": 1.0,
           "envelope_corr": 1.0}
LATE = {"mel_l2_x100": 8.0, "onset_precision": 0.0, "onset_recall": 0.0, "onset_f1": 0.0,
        "envelope_corr": -0.1}
MUTE = {"mel_l2_x100": 5.5, "onset_precision": math.nan, "onset_recall": 0.0, "onset_f1": 0.0,
        "envelope_corr": math.nan}


@pytest.fixture
def table():
    rows = [{"system": s, "video_id": "v1", **m} for s, m in
            (("real", PERFECT), ("late", LATE), ("mute", MUTE))]
    rows.append({"system": "half", "video_id": "v1", **{**PERFECT, "onset_recall": 0.5}})
    return MetricTable(pd.DataFrame(rows))


def pair(left, right, question="missing", **kw):
    return make_trial("t1", "pair", question, kw.pop("role", "main"), "v1", left, right, **kw)


def draw(trial, table, params, n=400, seed=0):
    rng = np.random.default_rng(seed)
    return [answer_trial(trial, table, params, rng) for _ in range(n)]


def test_scores_follow_the_criterion():
    assert criterion_score(PERFECT, "missing") == 1.0 and criterion_score(LATE, "missing") == 0.0
    # a silent clip misses every event but adds nothing redundant
    assert criterion_score(MUTE, "missing") == 0.0 and criterion_score(MUTE, "redundant") == 1.0
    assert criterion_score(PERFECT, "mismatched") == 1.0 > criterion_score(LATE, "mismatched") > 0
    assert criterion_score(PERFECT, "real") == 1.0 and criterion_score(MUTE, "real") < 0.2
    assert criterion_score(None, "missing") == 0.0


def test_noiseless_rater_always_takes_the_better_system(table):
    p = RaterParams(noise=0.0)
    assert set(draw(pair("real", "late"), table, p, 50)) == {"left"}
    assert set(draw(pair("late", "real"), table, p, 50)) == {"right"}
    # redundant: the silent clip has nothing redundant, the late one only redundant sound
    assert set(draw(pair("mute", "late", "redundant"), table, p, 50)) == {"left"}


def test_noise_sets_how_often_the_better_system_wins(table):
    # recall 1 vs 0.5: logistic(0.5 / sigma)
    for sigma, expected in ((0.1, 1 / (1 + math.exp(-5))), (0.5, 1 / (1 + math.exp(-1)))):
        answers = draw(pair("real", "half"), table, RaterParams(noise=sigma), n=2000)
        assert answers.count("left") / 2000 == pytest.approx(expected, abs=0.03)
    # equal systems: a coin
    even = draw(pair("real", "real"), table, RaterParams(noise=0.1), n=2000)
    assert even.count("left") / 2000 == pytest.approx(0.5, abs=0.04)


def test_real_fake_and_mos(table):
    p = RaterParams(noise=0.0)
    rf = lambda s: make_trial("t", "real_fake", "real", "main", "v1", s)  # noqa: E731
    assert draw(rf("real"), table, p, 5) == ["real"] * 5
    assert draw(rf("late"), table, p, 5) == ["fake"] * 5
    mos = lambda s: make_trial("t", "mos", "missing", "main", "v1", s)  # noqa: E731
    assert draw(mos("real"), table, p, 3) == ["5"] * 3
    assert draw(mos("mute"), table, p, 3) == ["1"] * 3
    assert draw(mos("half"), table, p, 3) == ["3"] * 3
    noisy = draw(mos("half"), table, RaterParams(noise=0.3), 500)
    assert set(noisy) <= {"1", "2", "3", "4", "5"} and len(set(noisy)) >= 3


def test_swapped_or_silent_sound_scores_zero(table):
    t = pair("real", "real", left_sound="silent", right_sound="own")
    assert set(draw(t, table, RaterParams(noise=0.0), 20)) == {"right"}


def test_checks_answered_correctly_at_the_set_rate(table):
    gold = pair("real", "late", role="gold", truth="right")  # truth beats the metrics
    answers = draw(gold, table, RaterParams(noise=0.0, check_accuracy=0.9), n=2000)
    assert answers.count("right") / 2000 == pytest.approx(0.9, abs=0.03)
    assert set(draw(gold, table, RaterParams(check_accuracy=0.0), 50)) == {"left"}
    catch_mos = make_trial("c", "mos", "missing", "catch", "v1", "real", left_sound="silent", truth="1")
    assert set(draw(catch_mos, table, RaterParams(check_accuracy=1.0), 30)) == {"1"}
    identical = pair("real", "real", role="catch", truth="")
    assert set(draw(identical, table, RaterParams(noise=0.0), 50)) == {"left", "right"}


def test_same_seed_same_answers(table):
    t = pair("real", "half")
    p = RaterParams(noise=0.5)
    assert draw(t, table, p, 50, seed=3) == draw(t, table, p, 50, seed=3)
    assert draw(t, table, p, 50, seed=3) != draw(t, table, p, 50, seed=4)


def test_bad_parameters_rejected():
    with pytest.raises(ValueError):
        RaterParams(noise=-1)
    with pytest.raises(ValueError):
        RaterParams(check_accuracy=1.5)
