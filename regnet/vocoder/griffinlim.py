"""Griffin-Lim: the weight-free vocoder, so `generate` works without a trained WaveNet.

The [0, 1] log-mel is mapped back to linear mel amplitude (`regnet.data.mel.mel_to_amplitude`),
then the same filterbank `log_mel` used is inverted by non-negative least squares and librosa runs Griffin-Lim on the magnitude STFT with the
same n_fft / hop / window as the forward transform. The phase start is seeded, so output repeats.
"""

from __future__ import annotations

import logging
from collections import defaultdict

import librosa
import numpy as np

from regnet.config import DataConfig
from regnet.data.mel import mel_basis, mel_to_amplitude

log = logging.getLogger(__name__)


class GriffinLimVocoder:
    name = "griffin-lim"

    def __init__(self, data_cfg: DataConfig, n_iter: int = 32, seed: int = 0):
        self.data_cfg = data_cfg
        self.n_iter = n_iter
        self.seed = seed

    @property
    def sample_rate(self) -> int:
        return self.data_cfg.sample_rate

    def mel_to_audio(self, mels: list[np.ndarray]) -> list[np.ndarray]:
        """``[n_mels, M]`` each -> float32 waveforms of ``M * hop`` samples. Clips of equal length
        are inverted in one call (librosa handles a leading batch axis)."""
        d = self.data_cfg
        by_len: dict[int, list[int]] = defaultdict(list)
        for i, m in enumerate(mels):
            if m.ndim != 2 or m.shape[0] != d.n_mels:
                raise ValueError(f"mel {i}: expected [{d.n_mels}, M], got {list(m.shape)}")
            by_len[m.shape[1]].append(i)
        out: list[np.ndarray | None] = [None] * len(mels)
        for frames, idx in by_len.items():
            amp = mel_to_amplitude(np.stack([mels[i] for i in idx]))
            # The very filterbank log_mel used, inverted by non-negative least squares.
            mag = librosa.util.nnls(mel_basis(d), amp)
            # A centred STFT of M * hop samples has M + 1 frames (log_mel keeps the first M):
            # repeat the last one so Griffin-Lim's re-analysis has the shape it expects.
            mag = np.concatenate([mag, mag[..., -1:]], axis=-1)
            wav = librosa.griffinlim(mag, n_iter=self.n_iter, hop_length=d.hop_length, win_length=d.win_length,
                                     n_fft=d.n_fft, length=frames * d.hop_length, random_state=self.seed)
            for j, i in enumerate(idx):
                out[i] = np.clip(wav[j], -1.0, 1.0).astype(np.float32)
        return out  # type: ignore[return-value]
