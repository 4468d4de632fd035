"""Log-mel exactly as the RegNet authors compute it (docs/paper.md), and its inverse.

``mel = librosa mel filterbank(sr, n_fft, n_mels, fmin=125, fmax=7600) @ |STFT(n_fft, hop)|``;
``db = 20 log10(max(1e-5, mel)) - 20``; ``x = clip((db + 100) / 100, 0, 1)``. Audio is zero-padded
or cut to ``clip_seconds * sample_rate`` samples first and the first ``mel_frames`` frames are kept
(10 s: 220,500 samples -> 862 frames -> 860 kept).
"""

from __future__ import annotations

import functools

import librosa
import numpy as np

from regnet.config import DataConfig

REF_LEVEL_DB = 20.0
MIN_LEVEL_DB = -100.0
AMP_FLOOR = 1e-5


@functools.lru_cache(maxsize=8)
def _mel_basis(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    return librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax).astype(np.float32)


def mel_basis(cfg: DataConfig) -> np.ndarray:
    return _mel_basis(cfg.sample_rate, cfg.n_fft, cfg.n_mels, cfg.fmin, cfg.fmax)


def fit_length(wav: np.ndarray, n: int) -> np.ndarray:
    """Zero-pad or cut a 1-D signal to n samples."""
    wav = np.asarray(wav, dtype=np.float32)
    if len(wav) >= n:
        return wav[:n]
    return np.pad(wav, (0, n - len(wav)))


def log_mel(wav: np.ndarray, cfg: DataConfig) -> np.ndarray:
    """Normalised log-mel [n_mels, mel_frames] in [0, 1] of a mono waveform at cfg.sample_rate."""
    wav = fit_length(wav, cfg.clip_samples)
    spec = np.abs(librosa.stft(wav, n_fft=cfg.n_fft, hop_length=cfg.hop_length,
                               win_length=cfg.win_length))
    mel = mel_basis(cfg) @ spec
    db = 20.0 * np.log10(np.maximum(AMP_FLOOR, mel)) - REF_LEVEL_DB
    norm = np.clip((db - MIN_LEVEL_DB) / -MIN_LEVEL_DB, 0.0, 1.0)
    out = norm[:, : cfg.mel_frames]
    if out.shape[1] < cfg.mel_frames:
        out = np.pad(out, ((0, 0), (0, cfg.mel_frames - out.shape[1])))
    return out.astype(np.float32)


def mel_to_amplitude(norm: np.ndarray) -> np.ndarray:
    """Inverse of the normalisation: [0, 1] log-mel -> linear mel amplitude (the filterbank output)."""
    db = np.clip(norm, 0.0, 1.0) * -MIN_LEVEL_DB + MIN_LEVEL_DB + REF_LEVEL_DB
    return np.power(10.0, db / 20.0).astype(np.float32)
