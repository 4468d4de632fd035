"""Mel L2, the paper's objective number (Table III, "L2 (x10^-2)").

RegNet measures the distance between the spectrogram of the generated sound and that of the
reference as the mean squared error of the normalised log-mels (values in [0, 1], the
representation the generator is trained on; docs/paper.md), and reports it multiplied by 100. Both
signals go through `regnet.data.mel.log_mel`, which pads or cuts them to the configured clip length,
so a shorter or longer clip is compared over the same frames.
"""

from __future__ import annotations

import numpy as np

from regnet.config import DataConfig
from regnet.data.mel import log_mel

REPORT_SCALE = 100.0  # the paper prints L2 in units of 1e-2


def mel_mse(mel: np.ndarray, ref_mel: np.ndarray) -> float:
    """Mean squared difference of two normalised log-mels of the same shape."""
    if mel.shape != ref_mel.shape:
        raise ValueError(f"mel shapes differ: {mel.shape} vs {ref_mel.shape}")
    d = mel.astype(np.float64) - ref_mel.astype(np.float64)
    return float(np.mean(d * d))


def mel_l2(wav: np.ndarray, ref_wav: np.ndarray, cfg: DataConfig) -> float:
    """Mel L2 in the paper's units (x10^-2): 100 * MSE(log_mel(wav), log_mel(ref_wav))."""
    return REPORT_SCALE * mel_mse(log_mel(wav, cfg), log_mel(ref_wav, cfg))
