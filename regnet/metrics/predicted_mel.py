"""Table III's number as the paper reports it: the L2 of RegNet's *predicted* mel to the clean mel.

`evaluate`'s mel L2 (`regnet.metrics.mel_l2`) recomputes the mel from the vocoded waveform, so it
also carries the vocoder's error. The paper's Table III measures the generator itself: the mel
S0_hat that RegNet predicts from the visual features (regularizer output zeroed, as at test)
against the log-mel of the clean relevant sound, mean squared over bins and frames, x1e-2. `ablate`
reports this one; the two are labelled apart wherever both appear.
"""

from __future__ import annotations

import numpy as np

from regnet.metrics.mel_l2 import REPORT_SCALE

LABEL = "predicted-mel L2 to clean (x1e-2; paper Table III: RegNet's mel, no vocoder)"
WAVEFORM_LABEL = "waveform mel L2 (x1e-2; recomputed from the vocoded sound, includes the vocoder)"


def predicted_mel_l2(pred: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per clip: ``100 * mean((pred - reference)^2)`` over bins and frames; ``pred`` and ``reference``
    are ``[clips, n_mels, frames]`` normalised log-mels (or one ``[n_mels, frames]`` pair)."""
    pred, reference = np.asarray(pred, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    if pred.shape != reference.shape:
        raise ValueError(f"mel shapes differ: {pred.shape} vs {reference.shape}")
    d = pred - reference
    return REPORT_SCALE * (d * d).reshape(d.shape[0], -1).mean(axis=1) if d.ndim == 3 else \
        np.array(REPORT_SCALE * float((d * d).mean()))
