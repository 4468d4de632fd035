"""Mel -> waveform: WaveNet (mixture of logistics, cached incremental sampling) and Griffin-Lim."""

from regnet.vocoder.griffinlim import GriffinLimVocoder
from regnet.vocoder.loader import GRIFFIN_LIM, Vocoder, WaveNetVocoder, load_vocoder
from regnet.vocoder.wavenet import WaveNet

__all__ = ["GRIFFIN_LIM", "GriffinLimVocoder", "Vocoder", "WaveNet", "WaveNetVocoder", "load_vocoder"]
