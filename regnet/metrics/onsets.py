"""Temporal alignment from onsets, with no pretrained weights.

Detection (following CondFoleyGen, Du et al. CVPR 2023, ``eval_onset.py``):
``librosa.onset.onset_detect(delta=0.3)`` on the waveform (here with the mel hop, 256 samples,
instead of librosa's 512, for finer timing), then non-maximum suppression: onsets are visited by
decreasing confidence and any other onset closer than 50 ms to a kept one is dropped. The
confidence of an onset is the maximum of the min-max normalised ``|wav|`` within +-50 ms of it.
A signal whose peak is below ``SILENCE_PEAK`` has no onsets.

Scores of detected onsets D against reference onsets R (the synthetic benchmark's exact event
times, or onsets detected the same way in the reference sound), tolerance ``tol`` (default 50 ms):

- **precision, recall, F1**: one-to-one matching of D and R with ``|d - r| <= tol``, maximum
  cardinality (two-pointer sweep on the sorted times, optimal in 1-D; the mir_eval convention).
  precision = matched / |D| (a proxy for Sound-Redundant: detected sound where nothing happens),
  recall = matched / |R| (a proxy for Sound-Missing), F1 = 2 matched / (|D| + |R|). precision is
  undefined (NaN) when nothing is detected and recall when there is no reference onset (F1 is then
  0); when both D and R are empty all three are 1 (silence where silence is due).
- **onset accuracy** (CondFoleyGen's "# onset acc", reported as Onset Acc by Diff-Foley): 1 when
  the number of detected onsets equals the number of reference onsets, else 0; the mean over clips
  is the fraction of clips with the right count. (CondFoleyGen scores a clip with an empty list 0;
  here two empty lists count as equal.)
- **onset AP** (CondFoleyGen / Diff-Foley "Onset AP"): each reference onset, in time order, is
  matched to the not-yet-used detection of highest confidence within ``tol`` (CondFoleyGen breaks
  the tie on the amplitude at the onset sample; here on the window confidence). A matched
  reference contributes (label 1, score = that detection's confidence), an unmatched reference
  (label 1, score 0), every unmatched detection (label 0, its confidence); AP is scikit-learn's
  ``average_precision_score`` of these labels and scores. NaN without reference onsets; 0 when
  nothing is detected. As in CondFoleyGen, a missed reference enters with score 0, which
  scikit-learn still counts as retrieved at the lowest threshold: a clip whose detections all miss
  scores |R| / (|R| + |D|), not 0 (kept for comparability with the published numbers). CondFoleyGen uses tol = 0.1 s for AP; pass ``tolerance_s=0.1`` to match it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

DEFAULT_TOLERANCE_S = 0.05
NMS_WINDOW_S = 0.05
CONFIDENCE_WINDOW_S = 0.05
ONSET_DELTA = 0.3
SILENCE_PEAK = 1e-4


@dataclass(frozen=True)
class Onsets:
    times_s: np.ndarray  # sorted, seconds
    confidence: np.ndarray  # same length, in [0, 1]


@dataclass(frozen=True)
class OnsetScores:
    n_detected: int
    n_reference: int
    matched: int
    precision: float
    recall: float
    f1: float
    accuracy: float
    ap: float


def _confidence_curve(wav: np.ndarray) -> np.ndarray:
    a = np.abs(wav.astype(np.float64))
    span = a.max() - a.min()
    return (a - a.min()) / span if span > 0 else np.zeros_like(a)


def _window_max(curve: np.ndarray, sample: int, half: int) -> float:
    lo, hi = max(0, sample - half), min(len(curve), sample + half + 1)
    return float(curve[lo:hi].max()) if hi > lo else 0.0


def detect_onsets(wav: np.ndarray, sample_rate: int, hop_length: int = 256,
                  delta: float = ONSET_DELTA) -> Onsets:
    """Onsets of a waveform with their confidences (see the module docstring)."""
    import librosa

    wav = np.asarray(wav, dtype=np.float32)
    if wav.size == 0 or float(np.max(np.abs(wav))) < SILENCE_PEAK:
        return Onsets(np.zeros(0), np.zeros(0))
    samples = librosa.onset.onset_detect(y=wav, sr=sample_rate, hop_length=hop_length,
                                         units="samples", delta=delta)
    if len(samples) == 0:
        return Onsets(np.zeros(0), np.zeros(0))
    curve = _confidence_curve(wav)
    half = int(CONFIDENCE_WINDOW_S * sample_rate)
    conf = np.array([_window_max(curve, int(s), half) for s in samples])
    keep = _nms(np.asarray(samples, dtype=np.int64), conf, int(NMS_WINDOW_S * sample_rate))
    order = np.argsort(samples[keep])
    kept = np.asarray(samples)[keep][order]
    return Onsets(kept / float(sample_rate), conf[keep][order])


def _nms(samples: np.ndarray, conf: np.ndarray, window: int) -> np.ndarray:
    """Indices kept: strongest first, dropping anything strictly closer than ``window``."""
    alive = np.ones(len(samples), dtype=bool)
    kept = []
    for i in np.argsort(-conf, kind="stable"):
        if not alive[i]:
            continue
        kept.append(i)
        alive &= np.abs(samples - samples[i]) >= window
    return np.array(sorted(kept), dtype=np.int64)


def match_count(detected_s: np.ndarray, reference_s: np.ndarray, tolerance_s: float) -> int:
    """Size of a maximum one-to-one matching with |d - r| <= tolerance (both lists any order)."""
    d = np.sort(np.asarray(detected_s, dtype=float))
    r = np.sort(np.asarray(reference_s, dtype=float))
    i = j = n = 0
    eps = 1e-9  # times are often exact multiples; keep the boundary inclusive under rounding
    while i < len(d) and j < len(r):
        if abs(d[i] - r[j]) <= tolerance_s + eps:
            n += 1
            i += 1
            j += 1
        elif d[i] < r[j]:
            i += 1
        else:
            j += 1
    return n


def onset_ap(detected: Onsets, reference_s: np.ndarray, tolerance_s: float) -> float:
    """CondFoleyGen's onset AP (see the module docstring)."""
    ref = np.sort(np.asarray(reference_s, dtype=float))
    if ref.size == 0:
        return math.nan
    if detected.times_s.size == 0:
        return 0.0
    from sklearn.metrics import average_precision_score

    unused = list(range(len(detected.times_s)))
    labels: list[int] = []
    scores: list[float] = []
    for r in ref:
        window = [k for k in unused if abs(detected.times_s[k] - r) <= tolerance_s + 1e-9]
        labels.append(1)
        if not window:
            scores.append(0.0)
            continue
        best = max(window, key=lambda k: detected.confidence[k])
        scores.append(float(detected.confidence[best]))
        unused.remove(best)
    for k in unused:
        labels.append(0)
        scores.append(float(detected.confidence[k]))
    return float(average_precision_score(labels, scores))


def score_onsets(detected: Onsets, reference_s, tolerance_s: float = DEFAULT_TOLERANCE_S) -> OnsetScores:
    """Precision, recall, F1, onset accuracy and onset AP of detected onsets against references."""
    ref = np.asarray(reference_s, dtype=float)
    nd, nr = int(detected.times_s.size), int(ref.size)
    m = match_count(detected.times_s, ref, tolerance_s)
    if nd == 0 and nr == 0:
        p = r = f = 1.0
    else:
        p = m / nd if nd else math.nan
        r = m / nr if nr else math.nan
        f = 2 * m / (nd + nr)
    return OnsetScores(n_detected=nd, n_reference=nr, matched=m, precision=p, recall=r, f1=f,
                       accuracy=1.0 if nd == nr else 0.0, ap=onset_ap(detected, ref, tolerance_s))
