"""PaSST (Koutini et al. 2022, "Efficient Training of Audio Transformers with Patchout"), the
AudioSet model av-benchmark uses for FD-PaSST, KL-PaSST and ISC-PaSST, written out in the layout of
the released ``passt-s-f128-p16-s10-ap.476-swa.pt`` (kkoutini/PaSST release v0.0.1-audioset; the
``hear21passt`` package's ``passt_s_swa_p16_128_ap476``, loaded there with ``strict=True``):

- ``patch_embed.proj``: 16x16 conv patches with stride 10 over the [128 mel x 998 frame] input
  (a 12 x 99 grid), ``freq_new_pos_embed`` [1, 768, 12, 1] + ``time_new_pos_embed`` [1, 768, 1, 99]
  (cut to the clip's patches when shorter), ``cls_token`` / ``dist_token`` + ``new_pos_embed``;
- 12 pre-norm ViT ``blocks`` (768-d, 12 heads, qkv bias, GELU MLP 3072, LayerNorm eps 1e-6),
  ``norm``;
- features = the mean of the two tokens (768-d, "before the prediction head": av-benchmark's PaSST
  embedding) -> ``head`` (LayerNorm + Linear) = 527 AudioSet logits; ``head_dist`` is in the file
  but unused at inference, as in the reference.

Input (hear21passt's ``AugmentMelSTFT`` in eval mode, written out here: the package builds its mel
bank with torchaudio, which this project does not install): 32 kHz; pre-emphasis
``x[n+1] - 0.97 x[n]``; ``torch.stft`` with n_fft 1024, hop 320, an 800-sample symmetric Hann
window, centred with reflect padding; power; 128 Kaldi-style mel bands 0-15000 Hz
(torchaudio.compliance.kaldi.get_mel_banks with a zero column for Nyquist); ``(log(mel + 1e-5) +
4.5) / 5``. Clips up to 10 s go through whole (hear21passt's ``get_scene_embeddings``); longer ones
as 10 s windows every 2.5 s over the reflect-padded clip, averaged, as that function does. A clip
under 16 frames (0.15 s), which the patch conv cannot take, is zero-padded to 16 frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from regnet.errors import UserError
from regnet.metrics.embedders import EmbedOutput, ReleasedEmbedder, check_state_dict, sha256_of, torch_load

NAME = "passt"
SAMPLE_RATE = 32000
N_FFT, HOP, WIN = 1024, 320, 800
N_MELS, FMIN, FMAX = 128, 0.0, 15000.0  # fmax = sr/2 - fmax_aug_range/2 (hear21passt's default)
MAX_WINDOW = 10 * SAMPLE_RATE  # hear21passt max_model_window, 10 000 ms
SCENE_HOP = int(2.5 * SAMPLE_RATE)  # scene_hop, 2500 ms
PATCH = 16
MIN_FRAMES = PATCH


@dataclass(frozen=True)
class PasstConfig:
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    stride: int = 10
    freq_patches: int = 12  # (128 - 16) // 10 + 1
    time_patches: int = 99  # (998 - 16) // 10 + 1
    num_classes: int = 527


def kaldi_mel_banks(num_bins: int = N_MELS, n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE,
                    low: float = FMIN, high: float = FMAX):
    """[num_bins, n_fft // 2 + 1] triangular bands on Kaldi's mel scale (no VTLN warp), the last
    (Nyquist) column zero, as hear21passt pads torchaudio's ``get_mel_banks``. Computed in float32
    tensors with float64 scalars, the way torchaudio does, so the bank is the same to the last bit
    the model was trained with, not just to 1e-5."""
    import torch

    lo = 1127.0 * math.log(1.0 + low / 700.0)
    hi = 1127.0 * math.log(1.0 + high / 700.0)
    delta = (hi - lo) / (num_bins + 1)
    b = torch.arange(num_bins).unsqueeze(1)
    left, center, right = lo + b * delta, lo + (b + 1.0) * delta, lo + (b + 2.0) * delta
    m = (1127.0 * (1.0 + (sample_rate / n_fft) * torch.arange(n_fft / 2) / 700.0).log()).unsqueeze(0)
    bank = torch.max(torch.zeros(1), torch.min((m - left) / (center - left), (right - m) / (right - center)))
    return torch.nn.functional.pad(bank, (0, 1))


def build(cfg: PasstConfig = PasstConfig()):
    import torch
    import torch.nn as nn

    from regnet.metrics.embedders.vit import Mlp

    class Attention(nn.Module):
        def __init__(self, dim, heads):
            super().__init__()
            self.num_heads = heads
            self.scale = (dim // heads) ** -0.5
            self.qkv = nn.Linear(dim, dim * 3, bias=True)
            self.proj = nn.Linear(dim, dim)

        def forward(self, x):
            b, n, c = x.shape
            q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
            attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
            return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))

    class Block(nn.Module):
        def __init__(self, dim, heads, mlp_ratio):
            super().__init__()
            self.norm1 = nn.LayerNorm(dim, eps=1e-6)
            self.attn = Attention(dim, heads)
            self.norm2 = nn.LayerNorm(dim, eps=1e-6)
            self.mlp = Mlp(dim, int(dim * mlp_ratio))

        def forward(self, x):
            x = x + self.attn(self.norm1(x))
            return x + self.mlp(self.norm2(x))

    class PatchEmbed(nn.Module):
        def __init__(self, dim, stride):
            super().__init__()
            self.proj = nn.Conv2d(1, dim, kernel_size=PATCH, stride=stride)

        def forward(self, x):
            return self.proj(x)

    class PaSST(nn.Module):
        """normalised log-mel [B, 1, 128, T] -> (features [B, 768], logits [B, classes])."""

        def __init__(self, c: PasstConfig):
            super().__init__()
            self.config = c
            d = c.embed_dim
            self.patch_embed = PatchEmbed(d, c.stride)
            self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
            self.dist_token = nn.Parameter(torch.zeros(1, 1, d))
            self.new_pos_embed = nn.Parameter(torch.zeros(1, 2, d))
            self.freq_new_pos_embed = nn.Parameter(torch.zeros(1, d, c.freq_patches, 1))
            self.time_new_pos_embed = nn.Parameter(torch.zeros(1, d, 1, c.time_patches))
            self.blocks = nn.Sequential(*[Block(d, c.num_heads, c.mlp_ratio) for _ in range(c.depth)])
            self.norm = nn.LayerNorm(d, eps=1e-6)
            self.head = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, c.num_classes))
            self.head_dist = nn.Linear(d, c.num_classes)
            self.register_buffer("mel_bank", kaldi_mel_banks().float(), persistent=False)
            self.register_buffer("window", torch.hann_window(WIN, periodic=False), persistent=False)

        def mel(self, wav):
            """hear21passt AugmentMelSTFT (eval): waveform [B, N] -> [B, 128, frames]."""
            x = wav[:, 1:] - 0.97 * wav[:, :-1]  # conv1d with [-0.97, 1]
            spec = torch.stft(x, N_FFT, hop_length=HOP, win_length=WIN, window=self.window, center=True,
                              pad_mode="reflect", normalized=False, return_complex=True)
            power = spec.real ** 2 + spec.imag ** 2
            return (torch.log(self.mel_bank @ power + 1e-5) + 4.5) / 5.0

        def forward_mel(self, x):
            x = self.patch_embed(x)  # [B, D, F, T]
            b, _, _, t = x.shape
            x = x + self.time_new_pos_embed[:, :, :, :t] + self.freq_new_pos_embed
            x = x.flatten(2).transpose(1, 2)
            cls = self.cls_token.expand(b, -1, -1) + self.new_pos_embed[:, :1]
            dist = self.dist_token.expand(b, -1, -1) + self.new_pos_embed[:, 1:]
            x = self.norm(self.blocks(torch.cat((cls, dist, x), dim=1)))
            features = (x[:, 0] + x[:, 1]) / 2
            return features, self.head(features)

        def forward(self, wav):
            return self.forward_mel(self.mel(wav).unsqueeze(1))

    torch.manual_seed(0)
    return PaSST(cfg)


def load(path: Path) -> ReleasedEmbedder:
    blob = torch_load(path)
    state = blob.get("model", blob) if isinstance(blob, dict) else blob  # hear21passt's filter unwraps 'model'
    if not isinstance(state, dict):
        raise UserError(f"{path}: not a PaSST state dict")
    w = state.get("time_new_pos_embed")
    if w is None:
        raise UserError(f"{path}: missing tensor 'time_new_pos_embed' (not a PaSST AudioSet checkpoint?)")
    model = build()
    model.load_state_dict(check_state_dict(path, model, state), strict=True)
    model.eval()
    return ReleasedEmbedder(
        name=NAME, path=path, sha256=sha256_of(path), sample_rate=SAMPLE_RATE, model=model,
        embed_fn=embed, has_logits=True,
        window_note="whole clip up to 10 s (longer: 10 s windows every 2.5 s, averaged); "
                    f"under {MIN_FRAMES} frames zero-padded to that")


def _forward_one(model, wav: np.ndarray):
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.asarray(wav, dtype=np.float32))[None]
    min_len = (MIN_FRAMES - 1) * HOP + 2  # +1 for the pre-emphasis, +1 so centring gives 16 frames
    if x.shape[1] < min_len:
        x = F.pad(x, (0, min_len - x.shape[1]))
    if x.shape[1] <= MAX_WINDOW:
        feats, logits = model(x)
        return feats[0], logits[0]
    # hear21passt get_timestamp_embeddings(window=10 s, hop=2.5 s, pad=window//2 reflect), averaged
    pad = MAX_WINDOW // 2
    padded = F.pad(x[:, None], (pad, pad), mode="reflect")[:, 0]
    n = 1 + (padded.shape[1] - MAX_WINDOW) // SCENE_HOP
    segments = torch.stack([padded[0, i * SCENE_HOP:i * SCENE_HOP + MAX_WINDOW] for i in range(n)])
    feats, logits = model(segments)
    return feats.mean(0), logits.mean(0)


def embed(model, wavs: list[np.ndarray]) -> list[EmbedOutput]:
    import torch

    out = []
    with torch.inference_mode():
        for w in wavs:
            f, lg = _forward_one(model, w)
            out.append(EmbedOutput(f[None].double().numpy(), lg.double().numpy()))
    return out

