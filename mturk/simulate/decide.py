"""How a simulated rater answers a trial, from the objective metrics of the clips it shows.

Each clip gets a score in [0, 1] per criterion, from its row of ``objective_clips.csv`` (the
per-clip output of `evaluate`):

- ``missing``: onset recall (fewer missed events -> higher); undefined (no reference onset) -> 0.5;
- ``redundant``: onset precision (fewer sounds where nothing happens); undefined (nothing
  detected, so nothing redundant) -> 1;
- ``mismatched``: spectral similarity ``exp(-mel_l2_x100 / MEL_SCALE)`` (1 for the reference itself);
- ``real``: the mean of onset F1, the spectral similarity and the envelope correlation (clipped to
  [0, 1]): how much the sound behaves like the real one.

A clip whose sound is not its own (a catch trial's silent or swapped sound) or that has no metrics
scores 0 for every criterion. With noise ``sigma`` (score units):

- pair: left is chosen with probability ``logistic((s_left - s_right) / sigma)``;
- real_fake: "real" with probability ``logistic((s - 0.5) / sigma)``;
- mos: ``round(1 + 4 * (s + N(0, sigma)))`` clipped to 1..5;
- ``sigma = 0``: always the metric's answer (ties broken at random).

Gold and catch trials with a known answer are answered correctly with probability
``check_accuracy``, otherwise with another allowed answer; a catch with no single right answer
(an identical pair) is answered at random.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mturk.study import Trial
from mturk.vocabulary import ANSWERS

MEL_SCALE = 4.0


@dataclass
class RaterParams:
    noise: float = 0.1
    check_accuracy: float = 0.95

    def __post_init__(self):
        if not (self.noise >= 0 and math.isfinite(self.noise)):
            raise ValueError(f"noise must be >= 0, got {self.noise}")
        if not 0.0 <= self.check_accuracy <= 1.0:
            raise ValueError(f"check_accuracy must be in [0, 1], got {self.check_accuracy}")


class MetricTable:
    """Per-clip metrics keyed by (system, video_id)."""

    def __init__(self, per_clip: pd.DataFrame):
        self.rows = {(str(r["system"]), str(r["video_id"])): r for r in per_clip.to_dict("records")}

    def get(self, system: str, video_id: str) -> dict | None:
        return self.rows.get((system, video_id))


def _finite(x, default: float) -> float:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return default
    return x if math.isfinite(x) else default


def criterion_score(metrics: dict | None, question: str) -> float:
    """A clip's score in [0, 1] for one question (see the module docstring)."""
    if metrics is None:
        return 0.0
    mel_sim = math.exp(-max(0.0, _finite(metrics.get("mel_l2_x100"), math.inf)) / MEL_SCALE)
    if question == "missing":
        return _finite(metrics.get("onset_recall"), 0.5)
    if question == "redundant":
        return _finite(metrics.get("onset_precision"), 1.0)
    if question == "mismatched":
        return mel_sim
    if question == "real":
        f1 = _finite(metrics.get("onset_f1"), 0.0)
        env = min(1.0, max(0.0, _finite(metrics.get("envelope_corr"), 0.0)))
        return (f1 + mel_sim + env) / 3.0
    raise ValueError(f"unknown question {question!r}")


def _logistic(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, x))))


def _p_first(diff: float, noise: float) -> float:
    if noise == 0:
        return 1.0 if diff > 0 else 0.0 if diff < 0 else 0.5
    return _logistic(diff / noise)


def answer_trial(trial: Trial, metrics: MetricTable, params: RaterParams,
                 rng: np.random.Generator) -> str:
    """The answer a simulated rater gives to one trial."""
    options = ANSWERS[trial.kind]
    if trial.role in ("gold", "catch"):
        if trial.truth in options:
            if rng.random() < params.check_accuracy:
                return trial.truth
            return str(rng.choice([o for o in options if o != trial.truth]))
        if not trial.truth:
            return str(rng.choice(options))

    def score(system: str, sound: str) -> float:
        own = sound in ("", "own")
        return criterion_score(metrics.get(system, trial.video_id) if own else None, trial.question)

    left = score(trial.left_system, trial.left_sound)
    if trial.kind == "pair":
        right = score(trial.right_system, trial.right_sound)
        return "left" if rng.random() < _p_first(left - right, params.noise) else "right"
    if trial.kind == "real_fake":
        return "real" if rng.random() < _p_first(left - 0.5, params.noise) else "fake"
    if trial.kind == "mos":
        noisy = left + (rng.normal(0.0, params.noise) if params.noise > 0 else 0.0)
        return str(int(min(5, max(1, round(1 + 4 * noisy)))))
    raise ValueError(f"unknown trial kind {trial.kind!r}")
