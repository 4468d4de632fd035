"""ImageBind (Girdhar et al. 2023, "ImageBind: One Embedding Space To Bind Them All"), the joint
audio-visual embedding behind av-benchmark's IB-score, written out in the key layout of the released
``imagebind_huge.pth`` (facebookresearch/ImageBind ``imagebind/models/imagebind_model.py``,
``multimodal_preprocessors.py``, ``transformer.py``, ``helpers.py``). Only the vision and audio
towers are built; the file's text, depth, thermal and IMU tensors are left unread.

- ``modality_preprocessors.vision``: ``rgbt_stem.proj.1`` Conv3d 3 -> 1280, kernel = stride =
  (2, 14, 14), no bias (``proj.0`` is PadIm2Video, which repeats a single image to 2 frames and has
  no tensors), ``cls_token``, ``pos_embedding_helper.pos_embed`` [1, 257, 1280] (one 2-frame clip
  of 224x224 = 16 x 16 patches).
- ``modality_preprocessors.audio``: ``rgbt_stem.proj`` Conv2d 1 -> 768, 16x16, stride 10, no bias,
  on the [1, 128 mel, 204 frame] fbank (12 x 19 patches), then ``rgbt_stem.norm_layer`` LayerNorm
  (eps 1e-5), ``cls_token``, ``pos_embedding_helper.pos_embed`` [1, 229, 768].
- ``modality_trunks.{vision,audio}``: SimpleTransformer: vision with ``pre_transformer_layer.0``
  LayerNorm (eps 1e-6), audio without; 32 / 12 ``blocks`` of pre-norm ``norm_1`` -> ``attn``
  (``nn.MultiheadAttention``, 16 / 12 heads, ``in_proj`` + ``out_proj``; the audio trunk's has
  ``add_bias_kv``: a learnt ``bias_k`` / ``bias_v`` appended to the keys and values) -> ``norm_2``
  -> ``mlp`` (``fc1`` GELU ``fc2``, 4x), LayerNorm eps 1e-6. Drop-path (0.1 in the audio trunk) is
  identity at inference and not written.
- ``modality_heads.{vision,audio}``: ``0`` LayerNorm (eps 1e-6) -> the CLS token -> ``2`` Linear to
  the 1024-d joint space, no bias.
- ``modality_postprocessors``: L2-normalise; audio then times ``clip(exp(1.log_logit_scale), 100)``
  (a buffer in the file, log 20). Several clips of one input are averaged after this, as
  ``ImageBindModel.forward`` does for 5-d / 6-d inputs (so the audio embedding is 20x a mean of
  unit vectors; a cosine does not see the scale).

Audio input, ImageBind's ``load_and_transform_audio_data`` (av-benchmark's ``ImageBindAudioDataset``
is a copy): 16 kHz mono; three 2 s windows placed by pytorchvideo's ``ConstantClipsPerVideoSampler``
(starts 0, (d - 2) / 2, d - 2 for a d-second clip, exact fractions, sample slices truncated); each
window's mean is subtracted (in place on the shared waveform, as the reference does on a view, so
a later overlapping window sees it) and it goes through Kaldi fbank (torchaudio
``compliance.kaldi.fbank`` with htk_compat, hanning window, 25 ms / 10 ms frames, 128 bins, no
dither, no energy; written out below, the project does not install torchaudio), cut or
zero-padded to 204 frames, then ``(x + 4.268) / 9.138``. A clip shorter than 2 s is, as there,
three copies of the whole clip, its fbank zero-padded (before the normalisation) to 204 frames. A
clip under 25 ms has no fbank frame (the reference fails on it): it has no embedding.

Video input, as av-benchmark's ``VideoDataset`` + ``encode_video_with_imagebind``: frames at 0.5 fps
(every 2 s: ``int(0.5 * clip length)`` of them, the last repeated when the video is one frame
short), short side scaled to 224, CLIP mean/std, three 224x224 crops along the long side (left,
centre, right; ImageBind's ``SpatialCrop``), and every pair of consecutive frames of each crop is
one 2-frame clip: 3 x (frames - 1) clips, their embeddings averaged. Depth, width, image size and
output size are read from the file, so a small random-weight model in the same layout loads the
same way (tests); head counts cannot be read from a weight file and are the released model's
(16 / 12) unless given.

IB-score, as av-benchmark's ``evaluate`` (``IB-Score``): ``cosine_similarity`` of the video
embedding of the ground-truth video and the audio embedding of the generated audio, averaged over
clips. What differs here (evaluate's ``_ib_frames`` / ``ib_metrics``): frames are scaled by
ffmpeg's area filter (torchvision bicubic there) and picked by nearest timestamp (ffmpeg's fps
filter there); audio is resampled by soxr (torchaudio there), read up to the clip length (the
whole file there) and mixed to mono (av-benchmark's fbank reads a stereo file's first channel);
a clip under 4 s, which av-benchmark cannot score (one 0.5 fps frame, no pair), gets one pair,
its first and last frame at 25 fps, as ImageBind's own ``load_and_transform_video_data`` takes a
clip shorter than its 2 s window whole and subsamples 2 frames, its first and last.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import numpy as np

from regnet.errors import UserError
from regnet.metrics.embedders import block_count, check_state_dict, sha256_of, state_tensor, torch_load

log = logging.getLogger(__name__)

NAME = "imagebind"
SAMPLE_RATE = 16000
MODALITIES = ("vision", "audio")  # the towers written here; the file's other modalities are skipped
# audio front end (ImageBind data.py load_and_transform_audio_data / waveform2melspec)
CLIP_S = 2  # seconds per audio window
AUDIO_CLIPS = 3
FRAME_MS, SHIFT_MS = 25, 10
WIN = SAMPLE_RATE * FRAME_MS // 1000  # 400 samples
HOP = SAMPLE_RATE * SHIFT_MS // 1000  # 160 samples
N_FFT = 512  # Kaldi rounds the 400-sample window up to a power of two
LOW_HZ = 20.0  # Kaldi's default low_freq; high_freq 0 = Nyquist
PREEMPH = 0.97
AUDIO_MEAN, AUDIO_STD = -4.268, 9.138
# video front end (av-benchmark VideoDataset: _IMAGEBIND_FPS, CLIP mean/std)
VIDEO_FPS = 0.5
PAIR_FPS = 25.0  # the rate a clip too short for two 0.5 fps frames is decoded at (see `video_clips`)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
N_CROPS = 3
MAX_LOGIT_SCALE = 100.0


@dataclass(frozen=True)
class ImageBindConfig:
    """Sizes of the two towers; the defaults are imagebind_huge's. `infer_config` reads all but the
    head counts, the audio stride and the fbank size from a state dict."""

    out_dim: int = 1024
    v_dim: int = 1280
    v_depth: int = 32
    v_heads: int = 16
    v_mlp: int = 5120
    image: int = 224
    patch: int = 14
    frames: int = 2  # video frames per clip (= the Conv3d's temporal kernel)
    a_dim: int = 768
    a_depth: int = 12
    a_heads: int = 12
    a_mlp: int = 3072
    a_kernel: int = 16
    a_stride: int = 10
    n_mels: int = 128
    target_len: int = 204  # fbank frames per 2 s window after cut / pad

    @property
    def v_grid(self) -> int:
        return self.image // self.patch

    @property
    def a_grid(self) -> tuple[int, int]:
        return ((self.n_mels - self.a_kernel) // self.a_stride + 1,
                (self.target_len - self.a_kernel) // self.a_stride + 1)


def fbank_bank(n_mels: int = 128):
    """[n_mels, 257] Kaldi mel triangles 20 Hz - 8 kHz over a 512-point FFT, the Nyquist column
    zero, as torchaudio's ``kaldi.fbank`` pads ``get_mel_banks`` (the same bank as PaSST's, at
    these sizes)."""
    from regnet.metrics.embedders.passt import kaldi_mel_banks

    return kaldi_mel_banks(num_bins=n_mels, n_fft=N_FFT, sample_rate=SAMPLE_RATE, low=LOW_HZ,
                           high=SAMPLE_RATE / 2)


def kaldi_fbank(wav, bank=None):
    """torchaudio ``compliance.kaldi.fbank(wav, htk_compat=True, sample_frequency=16000,
    use_energy=False, window_type="hanning", num_mel_bins=128, dither=0, frame_length=25,
    frame_shift=10)`` of a 1-D float tensor, in its order of operations: frames of 400 samples
    every 160 (snip edges), each frame's mean removed, pre-emphasis 0.97 (first sample against
    itself), symmetric Hann window, zero-padded to 512, power spectrum, mel bank, ``log(max(x,
    float32 eps))``. -> [frames, n_mels]; no frames for under 400 samples."""
    import torch
    import torch.nn.functional as F

    bank = fbank_bank() if bank is None else bank
    n = int(wav.shape[0])
    if n < WIN:
        return wav.new_zeros((0, bank.shape[0]))
    frames = 1 + (n - WIN) // HOP
    x = wav.contiguous().as_strided((frames, WIN), (HOP, 1))
    x = x - x.mean(dim=1, keepdim=True)
    x = x - PREEMPH * torch.cat((x[:, :1], x[:, :-1]), dim=1)
    x = x * torch.hann_window(WIN, periodic=False, dtype=x.dtype)
    x = F.pad(x, (0, N_FFT - WIN))
    power = torch.fft.rfft(x).abs().pow(2.0)
    mel = power @ bank.to(x.dtype).T
    return torch.clamp_min(mel, torch.finfo(torch.float32).eps).log()


def audio_windows(n_samples: int, sample_rate: int = SAMPLE_RATE) -> list[tuple[int, int]]:
    """Sample ranges of the three 2 s windows, as ``get_clip_timepoints`` with pytorchvideo's
    ``ConstantClipsPerVideoSampler(2, 3)`` gives them and ImageBind slices them (``int(t * sr)``)."""
    duration = n_samples / sample_rate  # a float, as in the reference
    max_start = Fraction(max(duration - CLIP_S, 0))
    step = Fraction(max_start, max(AUDIO_CLIPS - 1, 1))
    out = []
    for i in range(AUDIO_CLIPS):
        start = step * i
        out.append((int(start * sample_rate), int((start + CLIP_S) * sample_rate)))
    return out


def audio_input(wav: np.ndarray, cfg: ImageBindConfig = ImageBindConfig(), bank=None):
    """A 16 kHz waveform -> the audio tower's input [3, 1, n_mels, target_len] (None: under one
    fbank frame)."""
    import torch
    import torch.nn.functional as F

    w = torch.from_numpy(np.array(wav, dtype=np.float32))  # a copy: the windows demean it in place
    if len(w) < WIN:
        return None
    bank = fbank_bank(cfg.n_mels) if bank is None else bank
    clips = []
    for s, e in audio_windows(len(w)):
        seg = w[s:e]
        seg -= seg.mean()  # in place, as waveform2melspec does on its view of the waveform
        fb = kaldi_fbank(seg, bank).T  # [n_mels, frames]
        p = cfg.target_len - fb.shape[1]
        fb = F.pad(fb, (0, p)) if p > 0 else fb[:, :cfg.target_len]
        clips.append(((fb - AUDIO_MEAN) / AUDIO_STD)[None])
    return torch.stack(clips)


def crop_offsets(h: int, w: int, side: int) -> list[tuple[int, int]]:
    """(top, left) of ImageBind's three ``uniform_crop``s: along the longer side start, centre
    (``ceil``), end; the other side centred."""
    top, left = int(math.ceil((h - side) / 2)), int(math.ceil((w - side) / 2))
    if h > w:
        return [(0, left), (top, left), (h - side, left)]
    return [(top, 0), (top, left), (top, w - side)]


def video_frame_count(clip_seconds: float) -> int:
    """Frames av-benchmark takes of a clip: ``int(0.5 * duration)``, one every 2 s from 0."""
    return int(VIDEO_FPS * clip_seconds)


def video_clips(frames: np.ndarray, cfg: ImageBindConfig = ImageBindConfig()):
    """uint8 frames [T, H, W, 3], short side already ``cfg.image`` -> the vision tower's input
    [3 (T - 1), 3, 2, side, side]: CLIP-normalised, three crops, each pair of consecutive frames
    (pair-major, crops inner, as av-benchmark concatenates them). T >= 2."""
    import torch

    if len(frames) < 2:
        raise ValueError("need at least two frames")
    side = cfg.image
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0  # T C H W
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    x = (x - mean) / std
    h, w = x.shape[-2:]
    crops = torch.stack([x[..., t:t + side, l:l + side] for t, l in crop_offsets(h, w, side)])  # 3 T C S S
    pairs = torch.cat([crops[:, i:i + cfg.frames] for i in range(len(frames) - 1)])  # (T-1)*3, 2, C, S, S
    return pairs.permute(0, 2, 1, 3, 4).contiguous()  # 'n t c h w -> n c t h w'


def build(cfg: ImageBindConfig = ImageBindConfig()):
    import torch
    import torch.nn as nn

    from regnet.metrics.embedders.vit import Mlp

    class Holder(nn.Module):
        """A bare module: only there so the tensors get the released file's names."""

    class Block(nn.Module):
        """ImageBind's BlockWithMasking without layer scale; drop-path is identity at inference."""

        def __init__(self, dim, heads, hidden, bias_kv):
            super().__init__()
            self.attn = nn.MultiheadAttention(dim, heads, bias=True, add_bias_kv=bias_kv)
            self.norm_1 = nn.LayerNorm(dim, eps=1e-6)
            self.mlp = Mlp(dim, hidden)
            self.norm_2 = nn.LayerNorm(dim, eps=1e-6)

        def forward(self, x):  # x: (L, B, D), the trunk's sequence-first layout
            y = self.norm_1(x)
            x = x + self.attn(y, y, y, need_weights=False)[0]
            return x + self.mlp(self.norm_2(x))

    class Trunk(nn.Module):
        def __init__(self, dim, depth, heads, hidden, bias_kv, pre_ln):
            super().__init__()
            if pre_ln:  # Sequential(LayerNorm, rearrange): the LayerNorm is '.0'
                self.pre_transformer_layer = nn.Sequential(nn.LayerNorm(dim, eps=1e-6))
            else:
                self.pre_transformer_layer = None
            self.blocks = nn.Sequential(*[Block(dim, heads, hidden, bias_kv) for _ in range(depth)])

        def forward(self, tokens):  # (B, L, D) -> (B, L, D)
            if self.pre_transformer_layer is not None:
                tokens = self.pre_transformer_layer(tokens)
            return self.blocks(tokens.transpose(0, 1)).transpose(0, 1)

    def head(dim, out):  # LayerNorm, SelectElement(0) (no tensors: '.1'), Linear
        return nn.Sequential(nn.LayerNorm(dim, eps=1e-6), nn.Identity(), nn.Linear(dim, out, bias=False))

    def preprocessor(dim, n_tokens, proj, norm=None):
        p = Holder()
        p.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        p.rgbt_stem = Holder()
        p.rgbt_stem.proj = proj
        if norm is not None:
            p.rgbt_stem.norm_layer = norm
        p.pos_embedding_helper = Holder()
        p.pos_embedding_helper.pos_embed = nn.Parameter(torch.zeros(1, n_tokens + 1, dim))
        return p

    class LogitScale(nn.Module):
        def __init__(self, init: float):
            super().__init__()
            self.register_buffer("log_logit_scale", torch.ones([]) * math.log(init))

        def forward(self, x):
            return torch.clip(self.log_logit_scale.exp(), max=MAX_LOGIT_SCALE) * x

    class ImageBindAV(nn.Module):
        """ImageBind's vision and audio towers: `embed_vision` ([N, 3, frames, side, side] ->
        unit vectors [N, out]) and `embed_audio` ([N, 1, n_mels, target_len] -> 20 x unit vectors)."""

        def __init__(self, c: ImageBindConfig):
            super().__init__()
            self.config = c
            # PadIm2Video ('proj.0') has no tensors; inputs here always have c.frames frames
            v_proj = nn.Sequential(nn.Identity(), nn.Conv3d(3, c.v_dim, (c.frames, c.patch, c.patch),
                                                            (c.frames, c.patch, c.patch), bias=False))
            a_proj = nn.Conv2d(1, c.a_dim, c.a_kernel, c.a_stride, bias=False)
            fa, ta = c.a_grid
            self.modality_preprocessors = nn.ModuleDict({
                "vision": preprocessor(c.v_dim, c.v_grid ** 2, v_proj),
                "audio": preprocessor(c.a_dim, fa * ta, a_proj, nn.LayerNorm(c.a_dim)),
            })
            self.modality_trunks = nn.ModuleDict({
                "vision": Trunk(c.v_dim, c.v_depth, c.v_heads, c.v_mlp, bias_kv=False, pre_ln=True),
                "audio": Trunk(c.a_dim, c.a_depth, c.a_heads, c.a_mlp, bias_kv=True, pre_ln=False),
            })
            self.modality_heads = nn.ModuleDict({"vision": head(c.v_dim, c.out_dim),
                                                 "audio": head(c.a_dim, c.out_dim)})
            self.modality_postprocessors = nn.ModuleDict({
                "vision": nn.Identity(), "audio": nn.Sequential(nn.Identity(), LogitScale(20.0))})
            self.register_buffer("fbank_bank", fbank_bank(c.n_mels), persistent=False)

        def _tokens(self, modality, x):
            p = self.modality_preprocessors[modality]
            x = p.rgbt_stem.proj(x).flatten(2).transpose(1, 2)  # B C (T) H W -> B (T)HW C
            if hasattr(p.rgbt_stem, "norm_layer"):
                x = p.rgbt_stem.norm_layer(x)
            x = torch.cat((p.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
            return x + p.pos_embedding_helper.pos_embed

        def _embed(self, modality, x):
            x = self.modality_trunks[modality](self._tokens(modality, x))
            h = self.modality_heads[modality]
            x = h[2](h[0](x)[:, 0])
            x = nn.functional.normalize(x, dim=-1, p=2)
            return self.modality_postprocessors[modality][1](x) if modality == "audio" else x

        def embed_vision(self, clips):
            return self._embed("vision", clips)

        def embed_audio(self, mel):
            return self._embed("audio", mel)

    torch.manual_seed(0)
    return ImageBindAV(cfg)


def select_tensors(state: dict) -> dict:
    """The released file's vision and audio tensors (and any key outside ``modality_*``, so a
    foreign file is named as such); the other modalities' tensors are dropped unread."""
    out = {}
    for k, v in state.items():
        parts = k.split(".")
        if parts[0].startswith("modality_") and len(parts) > 1 and parts[1] not in MODALITIES:
            continue
        out[k] = v
    return out


def infer_config(path: Path, state: dict, base: ImageBindConfig = ImageBindConfig()) -> ImageBindConfig:
    """Sizes read from the state dict (heads, audio stride and fbank size from ``base``); a
    one-line UserError names a tensor it needs that is absent or malformed."""

    def get(key: str, ndim: int):
        return state_tensor(path, state, key, ndim, "an ImageBind state dict")

    def depth(prefix: str) -> int:
        return block_count(state, prefix)

    v_conv = get("modality_preprocessors.vision.rgbt_stem.proj.1.weight", 5)
    v_dim, _, frames, patch, _ = (int(s) for s in v_conv.shape)
    n_pos = int(get("modality_preprocessors.vision.pos_embedding_helper.pos_embed", 3).shape[1]) - 1
    grid = int(round(math.sqrt(max(n_pos, 0))))
    if grid < 1 or grid * grid != n_pos:
        raise UserError(f"{path}: tensor 'modality_preprocessors.vision.pos_embedding_helper.pos_embed' "
                        f"has {n_pos + 1} positions, not 1 + a square grid")
    a_conv = get("modality_preprocessors.audio.rgbt_stem.proj.weight", 4)
    c = replace(base, v_dim=v_dim, frames=frames, patch=patch, image=grid * patch,
                v_depth=depth("modality_trunks.vision.blocks."),
                v_mlp=int(get("modality_trunks.vision.blocks.0.mlp.fc1.weight", 2).shape[0]),
                out_dim=int(get("modality_heads.vision.2.weight", 2).shape[0]),
                a_dim=int(a_conv.shape[0]), a_kernel=int(a_conv.shape[-1]),
                a_depth=depth("modality_trunks.audio.blocks."),
                a_mlp=int(get("modality_trunks.audio.blocks.0.mlp.fc1.weight", 2).shape[0]))
    for name, dim, heads in (("v_heads", c.v_dim, c.v_heads), ("a_heads", c.a_dim, c.a_heads)):
        if dim % heads:
            raise UserError(f"{path}: width {dim} is not divisible by {heads} heads ({name})")
    return c


def _read_state(path: Path):
    """The file's tensors, memory-mapped where the file allows it: the released file is ~4.5 GB,
    most of it the towers not used here, which then are never read into memory."""
    import torch

    try:
        return torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - not a zip-format torch file: the ordinary loader says why
        return torch_load(path)


@dataclass
class IBModel:
    """A loaded ImageBind with its file's identity, as `ReleasedEmbedder` for the audio models."""

    name: str
    path: Path
    sha256: str
    sample_rate: int
    model: object
    config: ImageBindConfig
    window_note: str

    def video_embedding(self, frames: np.ndarray, chunk: int = 6) -> np.ndarray:
        """uint8 frames [T >= 2, H, W, 3] (short side ``config.image``) -> the mean of the unit
        vision embeddings of the 3 (T - 1) crop x frame-pair clips [out_dim]."""
        import torch

        clips = video_clips(frames, self.config)
        dtype = next(self.model.parameters()).dtype
        with torch.inference_mode():
            e = torch.cat([self.model.embed_vision(clips[i:i + chunk].to(dtype))
                           for i in range(0, len(clips), chunk)])
            return e.mean(0).double().numpy()

    def audio_embedding(self, wav: np.ndarray) -> np.ndarray | None:
        """A 16 kHz waveform -> the mean of its three windows' audio embeddings [out_dim] (None:
        under 25 ms, no fbank frame)."""
        import torch

        x = audio_input(wav, self.config, self.model.fbank_bank)
        if x is None:
            return None
        dtype = next(self.model.parameters()).dtype
        with torch.inference_mode():
            return self.model.embed_audio(x.to(dtype)).mean(0).double().numpy()


def ib_score(video_emb: np.ndarray, audio_emb: np.ndarray) -> float:
    """Cosine similarity of the two embeddings (av-benchmark: ``torch.cosine_similarity``, eps 1e-8)."""
    v, a = np.asarray(video_emb, np.float64), np.asarray(audio_emb, np.float64)
    return float(v @ a / max(np.linalg.norm(v) * np.linalg.norm(a), 1e-8))


def load(path: Path, base: ImageBindConfig = ImageBindConfig()) -> IBModel:
    blob = _read_state(path)
    state = blob.get("model", blob) if isinstance(blob, dict) else blob
    if not isinstance(state, dict):
        raise UserError(f"{path}: not an ImageBind state dict")
    state = select_tensors(state)
    cfg = infer_config(path, state, base)
    model = build(cfg)
    model.load_state_dict(check_state_dict(path, model, state), strict=True)
    model.eval()
    return IBModel(NAME, path, sha256_of(path), SAMPLE_RATE, model, cfg,
                   window_note=f"video: a frame every {1 / VIDEO_FPS:g} s, short side {cfg.image}, "
                   f"{N_CROPS} crops, consecutive frame pairs (clips under {2 / VIDEO_FPS:g} s: their "
                   f"first and last frame); audio: {AUDIO_CLIPS} windows of {CLIP_S} s at 16 kHz "
                   f"(shorter clips: the whole clip, fbank zero-padded; under {FRAME_MS} ms skipped)")
