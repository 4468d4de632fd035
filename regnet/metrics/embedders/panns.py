"""PANNs CNN14 (Kong et al. 2020, "PANNs: Large-Scale Pretrained Audio Neural Networks for Audio
Pattern Recognition"), written out in the released checkpoints' key layout.

Released files (a dict whose ``"model"`` entry is the state dict):

- ``Cnn14_mAP=0.431.pth``: 32 kHz, 1024-point STFT, hop 320, 64 mels 50-14000 Hz;
- ``Cnn14_16k_mAP=0.438.pth``: 16 kHz, 512-point STFT, hop 160, 64 mels 50-8000 Hz (av-benchmark's
  PANNs; its FD-PANN, KL-PANNS-softmax and ISC-PANNS are computed with this one).

The spectrogram and mel filter bank are layers of the checkpoint (torchlibrosa's conv-STFT kernels
``spectrogram_extractor.stft.conv_{real,imag}.weight`` and ``logmel_extractor.melW``), so the
variant is read from the STFT kernel size and the mel bank comes from the file. Layers as in the
reference ``Cnn14``: log-mel -> BatchNorm over mel bins -> six blocks of two 3x3 conv + BN + ReLU
with 2x2 average pooling (none after the sixth) -> mean over frequency -> max + mean over time ->
``fc1`` + ReLU = the 2048-d embedding (av-benchmark's ``"2048"`` feature) -> ``fc_audioset`` = 527
logits (``sigmoid`` of them is the reference's ``clipwise_output``). SpecAugment and dropout act
only in training and are left out; they hold no tensors.

Input: the whole clip at the variant's rate. Clips are zero-padded to the clip length before
(as the reference's ``pad_or_truncate`` pads its 10 s training clips); a clip under 32 STFT frames
(about 0.31 s), which the five poolings cannot take and the reference rejects with an error, is
zero-padded to 32 frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from regnet.errors import UserError
from regnet.metrics.embedders import EmbedOutput, ReleasedEmbedder, check_state_dict, sha256_of, torch_load

NAME = "panns-cnn14"
MIN_FRAMES = 32  # 2 ** 5 poolings in time


@dataclass(frozen=True)
class Cnn14Config:
    sample_rate: int
    window_size: int
    hop_size: int
    mel_bins: int = 64
    fmin: float = 50.0
    fmax: float = 14000.0
    classes_num: int = 527


# The released variants, keyed by STFT size (the conv-STFT kernel length in the file).
VARIANTS = {
    1024: Cnn14Config(sample_rate=32000, window_size=1024, hop_size=320, fmax=14000.0),
    512: Cnn14Config(sample_rate=16000, window_size=512, hop_size=160, fmax=8000.0),
    256: Cnn14Config(sample_rate=8000, window_size=256, hop_size=80, fmax=4000.0),
}


def build(cfg: Cnn14Config):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    from torchlibrosa.stft import LogmelFilterBank, Spectrogram

    class ConvBlock(nn.Module):
        def __init__(self, cin: int, cout: int):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
            self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.bn2 = nn.BatchNorm2d(cout)

        def forward(self, x, pool: int):
            x = F.relu(self.bn1(self.conv1(x)))
            x = F.relu(self.bn2(self.conv2(x)))
            return F.avg_pool2d(x, kernel_size=pool) if pool > 1 else x

    class Cnn14(nn.Module):
        """waveform [B, samples] -> (embedding [B, 2048], logits [B, classes])."""

        def __init__(self, c: Cnn14Config):
            super().__init__()
            self.config = c
            self.spectrogram_extractor = Spectrogram(
                n_fft=c.window_size, hop_length=c.hop_size, win_length=c.window_size, window="hann",
                center=True, pad_mode="reflect", freeze_parameters=True)
            self.logmel_extractor = LogmelFilterBank(
                sr=c.sample_rate, n_fft=c.window_size, n_mels=c.mel_bins, fmin=c.fmin, fmax=c.fmax,
                ref=1.0, amin=1e-10, top_db=None, freeze_parameters=True)
            self.bn0 = nn.BatchNorm2d(c.mel_bins)
            chans = [1, 64, 128, 256, 512, 1024, 2048]
            for i in range(6):
                setattr(self, f"conv_block{i + 1}", ConvBlock(chans[i], chans[i + 1]))
            self.fc1 = nn.Linear(2048, 2048)
            self.fc_audioset = nn.Linear(2048, c.classes_num)

        def forward(self, wav):
            x = self.logmel_extractor(self.spectrogram_extractor(wav))  # [B, 1, T, mels]
            x = self.bn0(x.transpose(1, 3)).transpose(1, 3)
            for i in range(6):
                x = getattr(self, f"conv_block{i + 1}")(x, pool=2 if i < 5 else 1)
            x = x.mean(dim=3)
            x = x.max(dim=2).values + x.mean(dim=2)
            emb = F.relu(self.fc1(x))
            return emb, self.fc_audioset(emb)

    torch.manual_seed(0)  # the loaded weights replace these; seeded so a bare build is reproducible
    return Cnn14(cfg)


def config_from_state(path: Path, state: dict) -> Cnn14Config:
    """The variant of a checkpoint, read from its STFT kernel and layer sizes."""
    key = "spectrogram_extractor.stft.conv_real.weight"
    w = state.get(key)
    if w is None or getattr(w, "ndim", 0) != 3:
        raise UserError(f"{path}: missing tensor '{key}' (not a PANNs Cnn14 checkpoint?)")
    n_fft = int(w.shape[-1])
    if n_fft not in VARIANTS:
        raise UserError(f"{path}: tensor '{key}' has STFT size {n_fft}; released Cnn14 files use "
                        f"{', '.join(map(str, sorted(VARIANTS)))}")
    base = VARIANTS[n_fft]
    mel = state.get("logmel_extractor.melW")
    fc = state.get("fc_audioset.weight")
    mel_bins = int(mel.shape[1]) if getattr(mel, "ndim", 0) == 2 else base.mel_bins
    classes = int(fc.shape[0]) if getattr(fc, "ndim", 0) == 2 else base.classes_num
    return Cnn14Config(base.sample_rate, base.window_size, base.hop_size, mel_bins, base.fmin,
                       base.fmax, classes)


def load(path: Path) -> ReleasedEmbedder:
    blob = torch_load(path)
    state = blob.get("model", blob) if isinstance(blob, dict) else blob
    if not isinstance(state, dict):
        raise UserError(f"{path}: not a PANNs checkpoint (expected a dict with a 'model' state dict)")
    cfg = config_from_state(path, state)
    model = build(cfg)
    model.load_state_dict(check_state_dict(path, model, state, ("num_batches_tracked",)), strict=True)
    model.eval()
    return ReleasedEmbedder(
        name=NAME, path=path, sha256=sha256_of(path), sample_rate=cfg.sample_rate, model=model,
        embed_fn=embed, has_logits=True,
        window_note=f"whole clip; under {MIN_FRAMES} frames ({MIN_FRAMES * cfg.hop_size / cfg.sample_rate:.2f} s) "
                    "zero-padded to that")


def embed(model, wavs: list[np.ndarray], batch: int = 4) -> list[EmbedOutput]:
    import torch

    hop = model.config.hop_size
    min_len = (MIN_FRAMES - 1) * hop
    out: list[EmbedOutput] = []
    with torch.inference_mode():
        for i in range(0, len(wavs), batch):
            chunk = [np.asarray(w, dtype=np.float32) for w in wavs[i:i + batch]]
            # Clips of one length (evaluate's case) run as a batch; otherwise one by one, so that
            # no clip is padded beyond its own length (max-over-time would see the padding).
            groups = [chunk] if len({len(w) for w in chunk}) == 1 else [[w] for w in chunk]
            for g in groups:
                x = np.zeros((len(g), max(min_len, len(g[0]))), dtype=np.float32)
                for j, w in enumerate(g):
                    x[j, :len(w)] = w
                emb, logits = model(torch.from_numpy(x))
                for j in range(len(g)):
                    out.append(EmbedOutput(emb[j:j + 1].double().numpy(), logits[j].double().numpy()))
    return out
