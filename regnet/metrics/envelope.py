"""Energy-envelope correlation: does the loudness of the generated sound rise and fall when the
reference's does? A weight-free, threshold-free companion to the onset scores."""

from __future__ import annotations

import math

import numpy as np

from regnet.config import DataConfig
from regnet.data.mel import fit_length

_SILENT_STD = 1e-8


def energy_envelope(wav: np.ndarray, cfg: DataConfig) -> np.ndarray:
    """Frame RMS (window n_fft, hop hop_length) over the configured clip length."""
    import librosa

    wav = fit_length(wav, cfg.clip_samples)
    return librosa.feature.rms(y=wav, frame_length=cfg.n_fft, hop_length=cfg.hop_length,
                               center=True)[0].astype(np.float64)


def envelope_correlation(wav: np.ndarray, ref_wav: np.ndarray, cfg: DataConfig) -> float:
    """Pearson correlation of the two RMS envelopes; NaN when either is constant (e.g. silence),
    where a correlation is undefined rather than zero."""
    a = energy_envelope(wav, cfg)
    b = energy_envelope(ref_wav, cfg)
    if a.std() < _SILENT_STD or b.std() < _SILENT_STD:
        return math.nan
    return float(np.corrcoef(a, b)[0, 1])
