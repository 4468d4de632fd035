"""Objective metrics: pure functions on waveforms and mels (`mel_l2`, `onsets`, `envelope`,
`embedding`) and `evaluate`, which joins clips with their references and writes results/."""

from regnet.metrics.envelope import envelope_correlation
from regnet.metrics.mel_l2 import mel_l2
from regnet.metrics.onsets import detect_onsets, score_onsets

__all__ = ["envelope_correlation", "mel_l2", "detect_onsets", "score_onsets"]
