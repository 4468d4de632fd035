"""Synchformer (Iashin et al. 2024, "Synchformer: Efficient Synchronization from Sparse Cues"), the
audio-visual offset classifier behind av-benchmark's DeSync, written out in the key layout of the
released ``synchformer_state_dict.pth`` (the file av-benchmark and MMAudio load with
``load_state_dict`` strict; a Synchformer training checkpoint such as ``24-01-04T16-39-21.pt``, whose
``model`` entry holds the same keys, is unwrapped and loads too):

- ``vfeat_extractor`` (MotionFormer, divided space-time ViT-B/16 on 16-frame 224x224 segments):
  ``patch_embed_3d.proj`` Conv3d (2x16x16 tubelets, 8 x 14 x 14 tokens), ``cls_token``,
  ``pos_embed`` [1, 197, 768] tiled over time + ``temp_embed`` [1, 8, 768]; 12 ``blocks`` each
  time attention (``norm3``, ``timeattn``) then space attention (``norm1``, ``attn``) then MLP
  (``norm2``, ``mlp``), LayerNorm eps 1e-6; ``norm``; ``spatial_attn_agg``: a pre-norm
  ``nn.TransformerEncoderLayer`` with its own ``cls_token`` that pools each frame's 196 tokens ->
  8 features per segment. ``patch_embed`` (a 2-D patch conv) is in the file but unused, as in the
  reference.
- ``afeat_extractor`` (AST on 128-mel x 66-frame segments): ``ast.embeddings`` (16x16 patches,
  stride 10: 12 x 6 tokens, ``cls_token``, ``distillation_token``, ``position_embeddings`` [1, 74,
  768]), 12 ``ast.encoder.layer`` (HF ViT layout, LayerNorm eps 1e-12), ``ast.layernorm``;
  ``freq_attn_agg``: the same CLS-pooling encoder layer over the 12 frequency tokens -> 6 features
  per segment.
- ``vproj`` / ``aproj`` (Linear 768 -> 768) and ``transformer`` (av-benchmark's GlobalTransformer:
  ``vis_in_lnorm`` / ``aud_in_lnorm``, ``OFF_tok`` + 14x8 video tokens + ``MOD_tok`` + 14x6 audio
  tokens, + ``pos_emb_cfg.pos_emb`` [1, 198, 768], 3 minGPT ``blocks`` of 8 heads, ``ln_f``,
  ``off_head`` Linear 768 -> 21 offset classes on the OFF token).

Offsets: the 21 classes are -2.0 ... +2.0 s in 0.2 s steps (av-benchmark ``make_class_grid(-2, 2,
21)``). Input, as av-benchmark's extraction (``extract_video.py``, ``av_bench/extract.py``,
``av_bench/data/video_dataset.py``): video at 25 fps, short side resized to 224 and centre-cropped
to 224x224, scaled to [-1, 1] (mean 0.5, std 0.5), cut into 16-frame segments every 8 frames;
audio at 16 kHz cut into 10240-sample segments every 5120 samples, each a power mel spectrogram
(torchaudio ``MelSpectrogram(16000, n_fft=1024, win_length=400, hop_length=160, n_mels=128)``:
periodic Hann window, centred reflect padding, HTK mel scale, no filter norm; written out here, the
project does not install torchaudio), ``log(mel + 1e-6)``, zero-padded from 65 to 66 frames, then
``(x + 4.2677393) / (2 * 4.5689974)``. The transformer's positional embedding covers exactly 14
segments (4.8 s); av-benchmark predicts the offset of the first 14 segments and of the last 14
segments of a clip and DeSync is the mean absolute predicted offset over both. A clip shorter than
4.8 s has no 14 segments: av-benchmark's data loaders drop it (a video more than 3 frames short
of its set length, an audio shorter than it); here it is skipped and named. The clip's length is
that of its audio (up to the clip length); a video up to 3 frames shorter is padded with its last
frame, as av-benchmark's loader does, and a longer shortfall shortens the clip to the video. Depth, width and
sizes are read from the file, so a small random-weight model in the same layout loads the same way
(tests); the number of heads cannot be read from a weight file and is the released model's
(12 / 12 / 8) unless given.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from regnet.errors import UserError
from regnet.metrics.embedders import block_count, check_state_dict, sha256_of, state_tensor, torch_load

log = logging.getLogger(__name__)

NAME = "synchformer"
SAMPLE_RATE = 16000
FPS = 25.0
N_FFT, WIN, HOP = 1024, 400, 160
LOG_EPS = 1e-6
MEL_MEAN, MEL_STD = -4.2677393, 4.5689974  # av-benchmark's normalisation of the log-mel
NUM_OFFSETS = 21
VIDEO_PAD_FRAMES = 3  # a video this many frames short of its audio is padded with its last frame
MAX_OFFSET_S = 2.0


@dataclass(frozen=True)
class SynchformerConfig:
    """Sizes of the model; the defaults are the released model's. `infer_config` reads all but the
    head counts, strides and mel/segment sizes from a state dict."""

    dim: int = 768
    v_depth: int = 12
    v_heads: int = 12
    v_mlp: int = 3072
    patch: int = 16
    tubelet: int = 2
    image: int = 224
    frames: int = 16  # video frames per segment
    a_depth: int = 12
    a_heads: int = 12
    a_mlp: int = 3072
    a_stride: int = 10
    n_mels: int = 128
    spec_t: int = 66  # mel frames per segment after padding
    agg_mlp: int = 3072  # the pooling encoder layers' feed-forward width
    t_depth: int = 3
    t_heads: int = 8
    segments: int = 14
    n_offsets: int = NUM_OFFSETS

    @property
    def v_tokens_per_frame(self) -> int:
        return (self.image // self.patch) ** 2

    @property
    def tv(self) -> int:  # video features per segment
        return self.frames // self.tubelet

    @property
    def a_grid(self) -> tuple[int, int]:  # AST patches (frequency, time)
        return ((self.n_mels - self.patch) // self.a_stride + 1, (self.spec_t - self.patch) // self.a_stride + 1)

    @property
    def seg_step_frames(self) -> int:
        return self.frames // 2

    @property
    def seg_samples(self) -> int:  # 16 frames at 25 fps = 0.64 s = 10240 samples
        return int(round(self.frames / FPS * SAMPLE_RATE))

    @property
    def seg_step_samples(self) -> int:
        return self.seg_samples // 2

    @property
    def window_frames(self) -> int:  # 14 segments: 120 frames, 4.8 s
        return (self.segments - 1) * self.seg_step_frames + self.frames

    @property
    def window_s(self) -> float:
        return self.window_frames / FPS

    @property
    def window_samples(self) -> int:
        return (self.segments - 1) * self.seg_step_samples + self.seg_samples


def offset_grid(n: int = NUM_OFFSETS) -> np.ndarray:
    """Offset (s) of each class, as av-benchmark's ``make_class_grid(-2, 2, 21)`` (float32)."""
    return np.linspace(-MAX_OFFSET_S, MAX_OFFSET_S, n).astype(np.float32)


def predicted_offsets(logits: np.ndarray) -> np.ndarray:
    """Predicted offset (s) of each row of offset-class logits: the grid value of the argmax."""
    x = np.asarray(logits)
    return offset_grid(x.shape[-1])[np.argmax(x, axis=-1)].astype(np.float64)


def desync(first_logits: np.ndarray, last_logits: np.ndarray) -> np.ndarray:
    """Per-clip DeSync: the mean of |predicted offset| of the clip's first and last 4.8 s windows
    (av-benchmark appends both to one list and averages it, which over clips is the same as
    averaging these per-clip values)."""
    return (np.abs(predicted_offsets(first_logits)) + np.abs(predicted_offsets(last_logits))) / 2.0


def htk_mel_banks(n_mels: int, n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE):
    """[n_fft // 2 + 1, n_mels] triangular HTK-mel filters, 0 Hz to Nyquist, unnormalised:
    torchaudio ``melscale_fbanks(..., norm=None, mel_scale="htk")`` computed the same way."""
    import torch

    n_freqs = n_fft // 2 + 1
    all_freqs = torch.linspace(0, sample_rate // 2, n_freqs)
    m_min = 2595.0 * math.log10(1.0)
    m_max = 2595.0 * math.log10(1.0 + (sample_rate / 2.0) / 700.0)
    m_pts = torch.linspace(m_min, m_max, n_mels + 2)
    f_pts = 700.0 * (10.0 ** (m_pts / 2595.0) - 1.0)
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1)
    down = (-1.0 * slopes[:, :-2]) / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return torch.max(torch.zeros(1), torch.min(down, up))


def build(cfg: SynchformerConfig = SynchformerConfig()):
    import torch
    import torch.nn as nn

    from regnet.metrics.embedders.vit import Mlp

    class PatchEmbed(nn.Module):
        def __init__(self, conv):
            super().__init__()
            self.proj = conv

    def attend(q, k, v):
        return torch.softmax(q @ k.transpose(-2, -1), dim=-1) @ v

    class DividedAttention(nn.Module):
        """MotionFormer's divided attention: the CLS token attends to every token; each other token
        attends to the CLS token and to its group (same frame for space, same position for time)."""

        def __init__(self, dim, heads):
            super().__init__()
            self.heads = heads
            self.scale = (dim // heads) ** -0.5
            self.qkv = nn.Linear(dim, dim * 3, bias=True)
            self.proj = nn.Linear(dim, dim)

        def forward(self, x, frames: int, per_frame: int, over: str):
            b, n, c = x.shape
            h, d = self.heads, c // self.heads
            q, k, v = (t.reshape(b, n, h, d).transpose(1, 2).reshape(b * h, n, d) for t in self.qkv(x).chunk(3, -1))
            q = q * self.scale
            cls_out = attend(q[:, :1], k, v)

            def group(t):  # (bh, f*p, d) -> (bh * groups, members, d)
                t = t[:, 1:].reshape(b * h, frames, per_frame, d)
                if over == "time":
                    t = t.transpose(1, 2)  # '(b) (f n) d -> (b n) f d'
                return t.reshape(-1, t.shape[2], d)

            q_, k_, v_ = group(q), group(k), group(v)
            r = q_.shape[0] // (b * h)
            k_ = torch.cat((k[:, :1].repeat_interleave(r, 0), k_), 1)
            v_ = torch.cat((v[:, :1].repeat_interleave(r, 0), v_), 1)
            out = attend(q_, k_, v_)
            if over == "time":
                out = out.reshape(b * h, per_frame, frames, d).transpose(1, 2)
            out = torch.cat((cls_out, out.reshape(b * h, frames * per_frame, d)), 1)
            return self.proj(out.reshape(b, h, n, d).transpose(1, 2).reshape(b, n, c))

    class DividedBlock(nn.Module):
        def __init__(self, dim, heads, hidden):
            super().__init__()
            self.norm1 = nn.LayerNorm(dim, eps=1e-6)
            self.attn = DividedAttention(dim, heads)
            self.timeattn = DividedAttention(dim, heads)
            self.norm2 = nn.LayerNorm(dim, eps=1e-6)
            self.mlp = Mlp(dim, hidden)
            self.norm3 = nn.LayerNorm(dim, eps=1e-6)

        def forward(self, x, frames, per_frame):
            x = x + self.timeattn(self.norm3(x), frames, per_frame, "time")
            x = x + self.attn(self.norm1(x), frames, per_frame, "space")
            return x + self.mlp(self.norm2(x))

    class PoolLayer(nn.TransformerEncoderLayer):
        """Synchformer's BaseEncoderLayer: prepend a learnt CLS token, one pre-norm encoder layer
        (GELU, LayerNorm eps 1e-6), return the CLS output."""

        def __init__(self, dim, heads, hidden):
            super().__init__(d_model=dim, nhead=heads, dim_feedforward=hidden, dropout=0.0,
                             activation=nn.GELU(), layer_norm_eps=1e-6, batch_first=True, norm_first=True)
            self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))

        def forward(self, x):
            x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), 1)
            return super().forward(x)[:, 0]

    class MotionFormer(nn.Module):
        def __init__(self, c: SynchformerConfig):
            super().__init__()
            d = c.dim
            self.c = c
            self.patch_embed = PatchEmbed(nn.Conv2d(3, d, c.patch, c.patch))
            self.patch_embed_3d = PatchEmbed(nn.Conv3d(3, d, (c.tubelet, c.patch, c.patch),
                                                       (c.tubelet, c.patch, c.patch)))
            self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
            self.pos_embed = nn.Parameter(torch.zeros(1, c.v_tokens_per_frame + 1, d))
            self.temp_embed = nn.Parameter(torch.zeros(1, c.tv, d))
            self.blocks = nn.ModuleList([DividedBlock(d, c.v_heads, c.v_mlp) for _ in range(c.v_depth)])
            self.norm = nn.LayerNorm(d, eps=1e-6)
            self.spatial_attn_agg = PoolLayer(d, c.v_heads, c.agg_mlp)

        def forward(self, x):
            """segments [N, 3, frames, H, W] in [-1, 1] -> [N, frames / 2, D]."""
            n_seg = x.shape[0]
            x = self.patch_embed_3d.proj(x).flatten(2).transpose(1, 2)  # (N, t*h*w, D), time-major
            p = self.c.v_tokens_per_frame
            t = x.shape[1] // p
            pos = self.pos_embed[:, 1:].repeat(1, t, 1) + self.temp_embed.repeat_interleave(p, 1)
            x = torch.cat((self.cls_token.expand(n_seg, -1, -1), x), 1)
            x = x + torch.cat((self.pos_embed[:, :1], pos), 1)
            for blk in self.blocks:
                x = blk(x, t, p)
            x = self.norm(x[:, 1:])
            x = self.spatial_attn_agg(x.reshape(n_seg * t, p, -1))  # pool each frame's tokens
            return x.reshape(n_seg, t, -1)

    class ASTSelfAttention(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.query = nn.Linear(dim, dim)
            self.key = nn.Linear(dim, dim)
            self.value = nn.Linear(dim, dim)

    class ASTDense(nn.Module):
        def __init__(self, i, o):
            super().__init__()
            self.dense = nn.Linear(i, o)

    class ASTAttention(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.attention = ASTSelfAttention(dim)
            self.output = ASTDense(dim, dim)

    class ASTLayer(nn.Module):
        def __init__(self, dim, heads, hidden):
            super().__init__()
            self.heads = heads
            self.attention = ASTAttention(dim)
            self.intermediate = ASTDense(dim, hidden)
            self.output = ASTDense(hidden, dim)
            self.layernorm_before = nn.LayerNorm(dim, eps=1e-12)
            self.layernorm_after = nn.LayerNorm(dim, eps=1e-12)

        def forward(self, x):
            b, n, c = x.shape
            a = self.attention.attention
            y = self.layernorm_before(x)
            q, k, v = (m(y).reshape(b, n, self.heads, -1).transpose(1, 2) for m in (a.query, a.key, a.value))
            att = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(c // self.heads), -1) @ v
            x = x + self.attention.output.dense(att.transpose(1, 2).reshape(b, n, c))
            y = nn.functional.gelu(self.intermediate.dense(self.layernorm_after(x)))
            return x + self.output.dense(y)

    class ASTEncoder(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.layer = nn.ModuleList([ASTLayer(c.dim, c.a_heads, c.a_mlp) for _ in range(c.a_depth)])

    class ASTPatch(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.projection = nn.Conv2d(1, c.dim, c.patch, c.a_stride)

    class ASTEmbeddings(nn.Module):
        def __init__(self, c):
            super().__init__()
            f, t = c.a_grid
            self.cls_token = nn.Parameter(torch.zeros(1, 1, c.dim))
            self.distillation_token = nn.Parameter(torch.zeros(1, 1, c.dim))
            self.patch_embeddings = ASTPatch(c)
            self.position_embeddings = nn.Parameter(torch.zeros(1, f * t + 2, c.dim))

    class ASTModel(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.embeddings = ASTEmbeddings(c)
            self.encoder = ASTEncoder(c)
            self.layernorm = nn.LayerNorm(c.dim, eps=1e-12)

    class AST(nn.Module):
        def __init__(self, c: SynchformerConfig):
            super().__init__()
            self.c = c
            self.ast = ASTModel(c)
            self.freq_attn_agg = PoolLayer(c.dim, c.a_heads, c.agg_mlp)

        def forward(self, x):
            """log-mel segments [N, spec_t, n_mels] -> [N, time patches, D]."""
            n = x.shape[0]
            e = self.ast.embeddings
            x = e.patch_embeddings.projection(x.unsqueeze(1).transpose(2, 3)).flatten(2).transpose(1, 2)
            x = torch.cat((e.cls_token.expand(n, -1, -1), e.distillation_token.expand(n, -1, -1), x), 1)
            x = x + e.position_embeddings
            for layer in self.ast.encoder.layer:
                x = layer(x)
            x = self.ast.layernorm(x)[:, 2:]
            f, t = self.c.a_grid
            x = x.reshape(n, f, t, -1).transpose(1, 2).reshape(n * t, f, -1)  # time as batch
            return self.freq_attn_agg(x).reshape(n, t, -1)

    class SelfAttention(nn.Module):
        def __init__(self, dim, heads):
            super().__init__()
            self.n_head = heads
            self.key = nn.Linear(dim, dim)
            self.query = nn.Linear(dim, dim)
            self.value = nn.Linear(dim, dim)
            self.proj = nn.Linear(dim, dim)

        def forward(self, x):
            b, n, c = x.shape
            k, q, v = (m(x).view(b, n, self.n_head, -1).transpose(1, 2) for m in (self.key, self.query, self.value))
            att = torch.softmax((q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1))), -1)
            return self.proj((att @ v).transpose(1, 2).reshape(b, n, c))

    class Block(nn.Module):
        def __init__(self, dim, heads):
            super().__init__()
            self.ln1 = nn.LayerNorm(dim)
            self.ln2 = nn.LayerNorm(dim)
            self.attn = SelfAttention(dim, heads)
            self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim), nn.Dropout(0.0))

        def forward(self, x):
            x = x + self.attn(self.ln1(x))
            return x + self.mlp(self.ln2(x))

    class PosEmb(nn.Module):
        def __init__(self, n, dim):
            super().__init__()
            self.pos_emb = nn.Parameter(torch.zeros(1, n, dim))

    class GlobalTransformer(nn.Module):
        def __init__(self, c: SynchformerConfig):
            super().__init__()
            d = c.dim
            self.vis_in_lnorm = nn.LayerNorm(d)
            self.aud_in_lnorm = nn.LayerNorm(d)
            self.OFF_tok = nn.Parameter(torch.zeros(1, 1, d))
            self.MOD_tok = nn.Parameter(torch.zeros(1, 1, d))
            self.pos_emb_cfg = PosEmb(2 + c.segments * (c.tv + c.a_grid[1]), d)
            self.blocks = nn.Sequential(*[Block(d, c.t_heads) for _ in range(c.t_depth)])
            self.ln_f = nn.LayerNorm(d)
            self.off_head = nn.Linear(d, c.n_offsets)

        def forward(self, v, a):
            b = v.shape[0]
            x = torch.cat((self.OFF_tok.expand(b, -1, -1), self.vis_in_lnorm(v),
                           self.MOD_tok.expand(b, -1, -1), self.aud_in_lnorm(a)), 1)
            x = self.ln_f(self.blocks(x + self.pos_emb_cfg.pos_emb))
            return self.off_head(x[:, 0])

    class Synchformer(nn.Module):
        """video segments [B, S, frames, 3, H, W] and log-mel segments [B, S, n_mels, spec_t]
        -> offset-class logits [B, n_offsets]."""

        def __init__(self, c: SynchformerConfig):
            super().__init__()
            self.config = c
            self.vfeat_extractor = MotionFormer(c)
            self.afeat_extractor = AST(c)
            self.vproj = nn.Linear(c.dim, c.dim)
            self.aproj = nn.Linear(c.dim, c.dim)
            self.transformer = GlobalTransformer(c)
            self.register_buffer("mel_bank", htk_mel_banks(c.n_mels).T.contiguous(), persistent=False)
            self.register_buffer("window", torch.hann_window(WIN), persistent=False)

        def extract_vfeats(self, vis):
            b, s = vis.shape[:2]
            x = vis.flatten(0, 1).permute(0, 2, 1, 3, 4)  # (B*S, 3, frames, H, W)
            return self.vfeat_extractor(x).reshape(b, s, -1, self.config.dim)

        def extract_afeats(self, mel):
            b, s = mel.shape[:2]
            x = mel.flatten(0, 1).transpose(1, 2)  # (B*S, spec_t, n_mels)
            return self.afeat_extractor(x).reshape(b, s, -1, self.config.dim)

        def compare_v_a(self, vfeats, afeats):
            v = self.vproj(vfeats).flatten(1, 2)
            a = self.aproj(afeats).flatten(1, 2)
            return self.transformer(v, a)

        def forward(self, vis, mel):
            return self.compare_v_a(self.extract_vfeats(vis), self.extract_afeats(mel))

        def log_mel(self, wav_segments):
            """[..., seg_samples] waveform segments -> normalised log-mel [..., n_mels, spec_t]."""
            shape = wav_segments.shape[:-1]
            x = wav_segments.reshape(-1, wav_segments.shape[-1])
            spec = torch.stft(x, N_FFT, hop_length=HOP, win_length=WIN, window=self.window, center=True,
                              pad_mode="reflect", normalized=False, onesided=True, return_complex=True)
            mel = torch.log(self.mel_bank @ spec.abs().pow(2.0) + LOG_EPS)
            t = self.config.spec_t
            mel = nn.functional.pad(mel, (0, t - mel.shape[-1])) if mel.shape[-1] < t else mel[..., :t]
            mel = (mel - MEL_MEAN) / (2 * MEL_STD)
            return mel.reshape(*shape, self.config.n_mels, t)

    torch.manual_seed(0)
    return Synchformer(cfg)


def infer_config(path: Path, state: dict, base: SynchformerConfig = SynchformerConfig()) -> SynchformerConfig:
    """Sizes read from the state dict (heads, strides and mel/segment sizes from ``base``); a
    one-line UserError names a tensor it needs that is absent or malformed."""

    def get(key: str, ndim: int):
        return state_tensor(path, state, key, ndim, "a Synchformer state dict")

    def depth(prefix: str) -> int:
        return block_count(state, prefix)

    conv3 = get("vfeat_extractor.patch_embed_3d.proj.weight", 5)
    dim, _, tubelet, patch, _ = (int(s) for s in conv3.shape)
    grid = int(round(math.sqrt(int(get("vfeat_extractor.pos_embed", 3).shape[1]) - 1)))
    tv = int(get("vfeat_extractor.temp_embed", 3).shape[1])
    c = replace(base, dim=dim, tubelet=tubelet, patch=patch, image=grid * patch, frames=tv * tubelet,
                v_depth=depth("vfeat_extractor.blocks."), a_depth=depth("afeat_extractor.ast.encoder.layer."),
                t_depth=depth("transformer.blocks."),
                v_mlp=int(get("vfeat_extractor.blocks.0.mlp.fc1.weight", 2).shape[0]),
                a_mlp=int(get("afeat_extractor.ast.encoder.layer.0.intermediate.dense.weight", 2).shape[0]),
                agg_mlp=int(get("vfeat_extractor.spatial_attn_agg.linear1.weight", 2).shape[0]),
                n_offsets=int(get("transformer.off_head.weight", 2).shape[0]))
    per_segment = c.tv + c.a_grid[1]
    n_pos = int(get("transformer.pos_emb_cfg.pos_emb", 3).shape[1]) - 2
    if n_pos <= 0 or n_pos % per_segment:
        raise UserError(f"{path}: tensor 'transformer.pos_emb_cfg.pos_emb' has {n_pos + 2} positions, not "
                        f"2 + segments x {per_segment} tokens")
    c = replace(c, segments=n_pos // per_segment)
    for name, heads in (("v_heads", c.v_heads), ("a_heads", c.a_heads), ("t_heads", c.t_heads)):
        if dim % heads:
            raise UserError(f"{path}: width {dim} is not divisible by {heads} heads ({name})")
    return c


@dataclass
class SyncModel:
    """A loaded Synchformer with its file's identity, as `ReleasedEmbedder` for the audio models."""

    name: str
    path: Path
    sha256: str
    sample_rate: int
    fps: float
    model: object
    config: SynchformerConfig
    window_note: str

    def predict(self, frames: np.ndarray, wav: np.ndarray, video_cache: dict | None = None) -> np.ndarray | None:
        """Offset-class logits [2, n_offsets] of the first and last window (None: too short)."""
        return predict(self, frames, wav, video_cache)


def load(path: Path, base: SynchformerConfig = SynchformerConfig()) -> SyncModel:
    blob = torch_load(path)
    state = blob.get("model", blob) if isinstance(blob, dict) else blob  # training checkpoints wrap it
    if not isinstance(state, dict):
        raise UserError(f"{path}: not a Synchformer state dict")
    cfg = infer_config(path, state, base)
    model = build(cfg)
    model.load_state_dict(check_state_dict(path, model, state), strict=True)
    model.eval()
    return SyncModel(NAME, path, sha256_of(path), SAMPLE_RATE, FPS, model, cfg,
                     window_note=f"first and last {cfg.window_s:g} s ({cfg.segments} segments of "
                     f"{cfg.frames} frames at {FPS:g} fps, {cfg.image}x{cfg.image}); shorter clips skipped")


def video_size(src_w: int, src_h: int, side: int) -> tuple[int, int]:
    """(w, h) with the short side ``side``, the long side truncated as torchvision's Resize(int)."""
    if src_w <= src_h:
        return side, int(side * src_h / src_w)
    return int(side * src_w / src_h), side


def centre_crop(frames: np.ndarray, side: int) -> np.ndarray:
    """[T, H, W, 3] -> [T, side, side, 3], torchvision CenterCrop's offsets."""
    h, w = frames.shape[1:3]
    top, left = int(round((h - side) / 2.0)), int(round((w - side) / 2.0))
    return frames[:, top:top + side, left:left + side]


def segments(model: SyncModel, frames: np.ndarray, wav: np.ndarray):
    """uint8 frames [T, side, side, 3] at 25 fps and a 16 kHz waveform -> every segment of the
    clip (video [n, frames, 3, side, side] in [-1, 1], audio [n, seg_samples]), both cut to the
    shorter of the two; None when that is shorter than one window."""
    import torch

    c = model.config
    audio_frames = int(math.floor(len(wav) / SAMPLE_RATE * FPS + 1e-9))
    if 0 < audio_frames - len(frames) <= VIDEO_PAD_FRAMES:
        # av-benchmark's VideoDataset repeats the last frame of a video up to 3 frames short
        frames = np.concatenate([frames, np.repeat(frames[-1:], audio_frames - len(frames), 0)])
    n_frames = min(len(frames), audio_frames)
    if n_frames < c.window_frames:
        return None
    frames, wav = frames[:n_frames], wav[: int(round(n_frames / FPS * SAMPLE_RATE))]
    vid = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0
    vid = (vid - 0.5) / 0.5
    aud = torch.from_numpy(np.asarray(wav, dtype=np.float32))
    # (n_frames - 16) // 8 + 1 segments of each: 640 samples per frame keeps the two grids equal
    n = (n_frames - c.frames) // c.seg_step_frames + 1
    vsegs = torch.stack([vid[i * c.seg_step_frames:i * c.seg_step_frames + c.frames] for i in range(n)])
    asegs = torch.stack([aud[i * c.seg_step_samples:i * c.seg_step_samples + c.seg_samples] for i in range(n)])
    return vsegs, asegs


def window_segments(n: int, per_window: int) -> tuple[list[int], list[int]]:
    """Segment indices of the first and the last window (av-benchmark's ``[:, :14]``, ``[:, -14:]``)."""
    return list(range(per_window)), list(range(n - per_window, n))


def prepare(model: SyncModel, frames: np.ndarray, wav: np.ndarray):
    """The model's inputs for the first and the last window: (video segments [2, S, frames, 3,
    side, side], log-mel segments [2, S, n_mels, spec_t]); None when the clip is too short."""
    import torch

    seg = segments(model, frames, wav)
    if seg is None:
        return None
    vsegs, asegs = seg
    first, last = window_segments(len(vsegs), model.config.segments)
    return (torch.stack((vsegs[first], vsegs[last])),
            model.model.log_mel(torch.stack((asegs[first], asegs[last]))))


def predict(model: SyncModel, frames: np.ndarray, wav: np.ndarray, video_cache: dict | None = None,
            chunk: int = 7) -> np.ndarray | None:
    """Offset-class logits [2, n_offsets] of the clip's first and last windows (None: too short).

    The same as ``model.model(*prepare(...))``, but each segment goes through its feature extractor
    once (the two windows overlap in clips under 9.6 s) in batches of ``chunk`` segments, and the
    video features are kept in ``video_cache`` (keyed by the segment count), so the systems made
    for one video share them; the caller clears the cache when the video changes."""
    import torch

    seg = segments(model, frames, wav)
    if seg is None:
        return None
    vsegs, asegs = seg
    first, last = window_segments(len(vsegs), model.config.segments)
    needed = sorted(set(first) | set(last))
    net = model.model

    def features(extract, x):
        out = [extract(x[needed[i:i + chunk]][None])[0] for i in range(0, len(needed), chunk)]
        return dict(zip(needed, torch.cat(out)))

    with torch.inference_mode():
        vf = None if video_cache is None else video_cache.get(len(vsegs))
        if vf is None:
            vf = features(net.extract_vfeats, vsegs)
            if video_cache is not None:
                video_cache[len(vsegs)] = vf
        af = features(net.extract_afeats, net.log_mel(asegs))
        v = torch.stack([torch.stack([vf[i] for i in idx]) for idx in (first, last)])
        a = torch.stack([torch.stack([af[i] for i in idx]) for idx in (first, last)])
        return net.compare_v_a(v, a).double().numpy()
