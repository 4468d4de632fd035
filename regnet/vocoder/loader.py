"""`load_vocoder`: the one way `generate` (and anyone else) turns mels into waveforms.

``spec`` is ``"griffin-lim"`` (weight-free, the default) or the path of a WaveNet checkpoint
written by `regnet-bench train-vocoder`. Both return an object with ``name``, ``sample_rate`` and
``mel_to_audio(list of [n_mels, M] arrays) -> list of float32 waveforms`` (``M * hop`` samples).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from tqdm import tqdm

from regnet.config import DataConfig, VocoderConfig
from regnet.errors import UserError
from regnet.vocoder.checkpoint import check_mel_compatible, load_wavenet
from regnet.vocoder.griffinlim import GriffinLimVocoder
from regnet.vocoder.sampler import FastSampler, ReferenceSampler, UniformStream
from regnet.vocoder.wavenet import WaveNet

log = logging.getLogger(__name__)

GRIFFIN_LIM = "griffin-lim"
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class Vocoder(Protocol):
    name: str

    @property
    def sample_rate(self) -> int: ...

    def mel_to_audio(self, mels: list[np.ndarray]) -> list[np.ndarray]: ...


class WaveNetVocoder:
    """Batched incremental sampling from a trained WaveNet.

    On CUDA the `FastSampler` (static buffers, CUDA graph, optional bf16/fp16 weights); on CPU the
    `ReferenceSampler`, whose plain per-layer queues cost fewer op dispatches per step there (see
    ``benchmarks/vocoder.py``). Clips are sorted by length so a batch wastes few padded steps.
    """

    def __init__(self, model: WaveNet, data_cfg: DataConfig, device: torch.device, name: str,
                 batch_size: int = 8, dtype: str = "float32", cuda_graph: str = "auto", seed: int = 0,
                 sampler: str = "auto"):
        if dtype not in _DTYPES:
            raise UserError(f"vocoder.sample_dtype: '{dtype}' is not one of {', '.join(_DTYPES)}")
        if dtype != "float32" and device.type != "cuda":
            raise UserError(f"vocoder.sample_dtype: '{dtype}' needs CUDA (this run is on {device.type})")
        if model.hop != data_cfg.hop_length:
            raise UserError(f"{name}: upsampling product {model.hop} != data.hop_length {data_cfg.hop_length}")
        self.model = model.to(device).eval()
        self.data_cfg = data_cfg
        self.device = device
        self.name = name
        self.batch_size = max(1, batch_size)
        self.seed = seed
        if sampler == "auto":
            sampler = "fast" if device.type == "cuda" else "reference"
        graph = {"auto": None, "on": True, "off": False}.get(cuda_graph)
        if sampler == "fast":
            self.sampler = FastSampler(self.model, _DTYPES[dtype], use_graph=graph)
        else:
            self.sampler = ReferenceSampler(self.model)

    @property
    def sample_rate(self) -> int:
        return self.data_cfg.sample_rate

    def mel_to_audio(self, mels: list[np.ndarray]) -> list[np.ndarray]:
        hop, n_mix = self.data_cfg.hop_length, self.model.cfg.n_mix
        order = sorted(range(len(mels)), key=lambda i: -mels[i].shape[1])
        out: list[np.ndarray | None] = [None] * len(mels)
        total = sum(m.shape[1] * hop for m in mels)
        with tqdm(total=total, unit="sample", unit_scale=True, desc="wavenet", disable=None) as bar:
            for b, lo in enumerate(range(0, len(order), self.batch_size)):
                idx = order[lo:lo + self.batch_size]
                frames = [mels[i].shape[1] for i in idx]
                batch = np.zeros((len(idx), mels[idx[0]].shape[0], max(frames)), dtype=np.float32)
                for j, i in enumerate(idx):
                    batch[j, :, : frames[j]] = mels[i]
                mel = torch.from_numpy(batch).to(self.device)
                stream = UniformStream(len(idx), n_mix, self.seed + b, self.device)
                wav, _ = self.sampler.run(mel, max(frames) * hop, stream, progress=bar)
                wav = wav.float().cpu().numpy()
                for j, i in enumerate(idx):
                    out[i] = wav[j, : frames[j] * hop].astype(np.float32)
        return out  # type: ignore[return-value]


def load_vocoder(spec: str | Path | None, data_cfg: DataConfig, device: torch.device | str = "cpu",
                 vocoder_cfg: VocoderConfig | None = None, seed: int = 0) -> Vocoder:
    """``"griffin-lim"`` (or None) -> `GriffinLimVocoder`; a checkpoint path -> `WaveNetVocoder`.

    ``vocoder_cfg`` supplies the run-time settings (Griffin-Lim iterations, sampling batch, dtype,
    CUDA graph); the network's own sizes always come from the checkpoint.
    """
    run = vocoder_cfg or VocoderConfig()
    device = torch.device(device)
    if spec is None or str(spec) == GRIFFIN_LIM:
        return GriffinLimVocoder(data_cfg, n_iter=run.griffin_lim_iters, seed=seed)
    path = Path(spec)
    model, trained_data, _ = load_wavenet(path, device)
    check_mel_compatible(path, trained_data, data_cfg)
    return WaveNetVocoder(model, data_cfg, device, name=f"wavenet:{path}", batch_size=run.sample_batch,
                          dtype=run.sample_dtype, cuda_graph=run.cuda_graph, seed=seed)
