"""LAION-CLAP (Wu, Chen et al. 2023, "Large-scale Contrastive Language-Audio Pretraining with Feature
Fusion and Keyword-to-Caption Augmentation"), the non-fusion HTSAT-tiny + RoBERTa model, written out
in the layout of the released ``630k-audioset-best.pt`` / ``630k-best.pt`` (lukewys/laion_clap on
the Hugging Face hub): a dict whose ``state_dict`` holds the weights of LAION-AI/CLAP's ``CLAP``
module under ``module.`` (DistributedDataParallel), stripped as laion_clap's ``load_state_dict``
does; the RoBERTa ``text_branch.embeddings.position_ids`` buffer (persistent in the transformers the
file was saved with, not in later ones) is dropped, as there.

Audio branch (``audio_branch``: ``clap_module/htsat.py``, ``HTSAT_Swin_Transformer`` built by
``create_htsat_model`` for "tiny": spec 256, patch 4 stride 4, embed 96, depths 2-2-6-2, heads
4-8-16-32, window 8; the sizes are read from the file's tensor shapes, so the same code builds the
test's smaller model and should build HTSAT-base, ``music_speech_audioset_epoch_15_esc_89.98.pt``,
the file av-benchmark's LAION_CLAP score uses; neither real file has been loaded here):

- 48 kHz; torchlibrosa ``Spectrogram`` (n_fft 1024, hop 480, Hann, centred, reflect padding; its
  conv-STFT kernels ``spectrogram_extractor.stft.conv_{real,imag}.weight`` come from the file) and
  ``LogmelFilterBank`` (64 mels 50-14000 Hz, ``10 log10(max(x, 1e-10))``; ``logmel_extractor.melW``
  from the file) -> BatchNorm over mel bins (``bn0``);
- ``reshape_wav2img``: the [1001 frame x 64 mel] log-mel is stretched to 1024 frames (bicubic,
  align_corners) and folded into a 256 x 256 image of four 256-frame rows;
- Swin layers (window attention with relative position bias, shifted windows with the -100
  mask, PatchMerging between layers), final LayerNorm; the 768-d ``embedding`` is the mean over
  all tokens (the reference's ``avgpool`` of the regrouped tokens is the same mean);
- ``audio_projection`` (Linear 768-512, ReLU, Linear 512-512), L2-normalised: laion_clap's
  ``get_audio_embedding``, the 512-d vector used here for FD and the CLAP score. ``tscam_conv`` /
  ``head`` (HTSAT's AudioSet head, not trained by CLAP's loss) and ``audio_transform`` /
  ``text_transform`` (training-time MLPs) are in the file and loaded, but unused, as in the reference.

Input as laion_clap's ``get_audio_embedding_from_data`` with ``enable_fusion=False``: the waveform
is quantised to int16 and back (``float32_to_int16`` / ``int16_to_float32``), then
``get_audio_features(..., 480000, data_truncating="rand_trunc", data_filling="repeatpad")``: a clip
shorter than 10 s is tiled whole ``floor(480000 / n)`` times and zero-padded to 480,000 samples; a
longer one is cut to one 10 s window, which the reference draws at random (``np.random``) even at
inference; here it is always the first 10 s (start 0, one of the reference's equally likely crops),
so that the numbers are reproducible.

Text branch (``text_branch``: transformers' ``RobertaModel``, roberta-base sizes read from the
file; heads = width / 64, roberta-base's 12) and ``text_projection`` (Linear 768-512, ReLU, Linear
512-512), L2-normalised, on ``pooler_output`` of the prompt tokenised by RoBERTa's byte-level BPE
(``vocab.json`` + ``merges.txt`` of roberta-base, from a local folder; padded / truncated to 77
tokens as laion_clap's ``tokenizer``). It needs ``transformers`` (the ``clap`` extra); without it,
or without the tokenizer files, only the audio embedding is available.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from regnet.errors import UserError
from regnet.metrics.embedders import (EmbedOutput, ReleasedEmbedder, check_state_dict, sha256_of, state_tensor,
                                      torch_load)

log = logging.getLogger(__name__)

NAME = "clap"
SAMPLE_RATE = 48000
CLIP_SAMPLES = 480_000  # audio_cfg.clip_samples: 10 s
N_FFT, HOP = 1024, 480
FMIN, FMAX = 50.0, 14000.0
SPEC_SIZE = 256  # every HTSAT variant of create_htsat_model
CONTEXT_LENGTH = 77  # laion_clap tokenizer(max_length=77)
DEFAULT_PROMPT = "the sound of {class}"
TEXT_PREFIXES = ("text_branch.", "text_transform.", "text_projection.", "logit_scale_t")
# buffers the model computes itself (the relative position index of each window and the
# shifted-window mask); a file may hold them or not, depending on the torch it was saved with
OPTIONAL = ("num_batches_tracked", "relative_position_index", "attn_mask")
TOKENIZER_FILES = ("vocab.json", "merges.txt")


@dataclass(frozen=True)
class HtsatConfig:
    embed_dim: int = 96
    depths: tuple[int, ...] = (2, 2, 6, 2)
    num_heads: tuple[int, ...] = (4, 8, 16, 32)
    window_size: int = 8
    patch_size: int = 4
    mel_bins: int = 64
    n_fft: int = N_FFT
    num_classes: int = 527
    joint_dim: int = 512  # CLAP joint_embed_shape
    spec_size: int = SPEC_SIZE
    mlp_ratio: float = 4.0

    @property
    def num_features(self) -> int:
        return self.embed_dim * 2 ** (len(self.depths) - 1)

    @property
    def freq_ratio(self) -> int:
        return self.spec_size // self.mel_bins


def _mlp_layers(dim: int):
    """laion_clap ``MLPLayers(units=[d, d, d], dropout=0.1)``: Linear, ReLU, Dropout, Linear (keys
    ``sequential.0`` / ``sequential.3``); only used in training."""
    import torch.nn as nn

    m = nn.Module()
    m.sequential = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Dropout(0.1), nn.Linear(dim, dim))
    return m


def _projection(width: int, joint: int):
    import torch.nn as nn

    return nn.Sequential(nn.Linear(width, joint), nn.ReLU(), nn.Linear(joint, joint))


def build_audio(cfg: HtsatConfig = HtsatConfig()):
    """The audio half of laion_clap's ``CLAP``: ``audio_branch`` (HTSAT), ``audio_projection``,
    ``audio_transform``, ``logit_scale_a``; waveform [B, 480000] at 48 kHz -> unit vectors [B, joint]."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    from torchlibrosa.stft import LogmelFilterBank, Spectrogram

    from regnet.metrics.embedders.vit import Mlp

    def window_partition(x, w):
        b, h, wd, c = x.shape
        x = x.view(b, h // w, w, wd // w, w, c)
        return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, w, w, c)

    def window_reverse(windows, w, h, wd):
        b = int(windows.shape[0] / (h * wd / w / w))
        x = windows.view(b, h // w, wd // w, w, w, -1)
        return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(b, h, wd, -1)

    class WindowAttention(nn.Module):
        def __init__(self, dim, window, heads):
            super().__init__()
            self.window, self.num_heads = window, heads
            self.scale = (dim // heads) ** -0.5
            self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
            coords = torch.stack(torch.meshgrid([torch.arange(window), torch.arange(window)], indexing="ij"))
            flat = coords.flatten(1)
            rel = (flat[:, :, None] - flat[:, None, :]).permute(1, 2, 0).contiguous()
            rel[:, :, 0] += window - 1
            rel[:, :, 1] += window - 1
            rel[:, :, 0] *= 2 * window - 1
            self.register_buffer("relative_position_index", rel.sum(-1))
            self.qkv = nn.Linear(dim, dim * 3, bias=True)
            self.proj = nn.Linear(dim, dim)

        def forward(self, x, mask):
            b_, n, c = x.shape
            q, k, v = self.qkv(x).reshape(b_, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
            attn = (q * self.scale) @ k.transpose(-2, -1)
            bias = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(n, n, -1)
            attn = attn + bias.permute(2, 0, 1).contiguous().unsqueeze(0)
            if mask is not None:
                nw = mask.shape[0]
                attn = (attn.view(b_ // nw, nw, self.num_heads, n, n) + mask.unsqueeze(1).unsqueeze(0))
                attn = attn.view(-1, self.num_heads, n, n)
            return self.proj((attn.softmax(dim=-1) @ v).transpose(1, 2).reshape(b_, n, c))

    class SwinBlock(nn.Module):
        def __init__(self, dim, resolution, heads, window, shift, mlp_ratio):
            super().__init__()
            self.resolution = resolution
            if min(resolution) <= window:  # the window covers the whole map: no partition, no shift
                shift, window = 0, min(resolution)
            self.window, self.shift = window, shift
            self.norm1 = nn.LayerNorm(dim)
            self.attn = WindowAttention(dim, window, heads)
            self.norm2 = nn.LayerNorm(dim)
            self.mlp = Mlp(dim, int(dim * mlp_ratio))
            mask = None
            if shift > 0:
                h, w = resolution
                img = torch.zeros((1, h, w, 1))
                cnt = 0
                for hs in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
                    for ws in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
                        img[:, hs, ws, :] = cnt
                        cnt += 1
                mw = window_partition(img, window).view(-1, window * window)
                mask = mw.unsqueeze(1) - mw.unsqueeze(2)
                mask = mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)
            self.register_buffer("attn_mask", mask)

        def forward(self, x):
            h, w = self.resolution
            b, _, c = x.shape
            shortcut = x
            x = self.norm1(x).view(b, h, w, c)
            if self.shift > 0:
                x = torch.roll(x, shifts=(-self.shift, -self.shift), dims=(1, 2))
            win = window_partition(x, self.window).view(-1, self.window * self.window, c)
            win = self.attn(win, self.attn_mask).view(-1, self.window, self.window, c)
            x = window_reverse(win, self.window, h, w)
            if self.shift > 0:
                x = torch.roll(x, shifts=(self.shift, self.shift), dims=(1, 2))
            x = shortcut + x.reshape(b, h * w, c)
            return x + self.mlp(self.norm2(x))

    class PatchMerging(nn.Module):
        def __init__(self, resolution, dim):
            super().__init__()
            self.resolution = resolution
            self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
            self.norm = nn.LayerNorm(4 * dim)

        def forward(self, x):
            h, w = self.resolution
            b, _, c = x.shape
            x = x.view(b, h, w, c)
            x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
            return self.reduction(self.norm(x.view(b, -1, 4 * c)))

    class BasicLayer(nn.Module):
        def __init__(self, dim, resolution, depth, heads, window, mlp_ratio, downsample):
            super().__init__()
            self.blocks = nn.ModuleList([
                SwinBlock(dim, resolution, heads, window, 0 if i % 2 == 0 else window // 2, mlp_ratio)
                for i in range(depth)])
            self.downsample = PatchMerging(resolution, dim) if downsample else None

        def forward(self, x):
            for blk in self.blocks:
                x = blk(x)
            return self.downsample(x) if self.downsample is not None else x

    class PatchEmbed(nn.Module):
        def __init__(self, patch, dim):
            super().__init__()
            self.proj = nn.Conv2d(1, dim, kernel_size=patch, stride=patch)
            self.norm = nn.LayerNorm(dim)

        def forward(self, x):
            return self.norm(self.proj(x).flatten(2).transpose(1, 2))

    class HTSAT(nn.Module):
        def __init__(self, c: HtsatConfig):
            super().__init__()
            self.config = c
            self.spectrogram_extractor = Spectrogram(
                n_fft=c.n_fft, hop_length=HOP, win_length=c.n_fft, window="hann", center=True,
                pad_mode="reflect", freeze_parameters=True)
            self.logmel_extractor = LogmelFilterBank(
                sr=SAMPLE_RATE, n_fft=c.n_fft, n_mels=c.mel_bins, fmin=FMIN, fmax=FMAX, ref=1.0,
                amin=1e-10, top_db=None, freeze_parameters=True)
            self.bn0 = nn.BatchNorm2d(c.mel_bins)
            self.patch_embed = PatchEmbed(c.patch_size, c.embed_dim)
            grid = c.spec_size // c.patch_size
            self.layers = nn.ModuleList([
                BasicLayer(c.embed_dim * 2 ** i, (grid // 2 ** i, grid // 2 ** i), d, c.num_heads[i],
                           c.window_size, c.mlp_ratio, downsample=i < len(c.depths) - 1)
                for i, d in enumerate(c.depths)])
            self.norm = nn.LayerNorm(c.num_features)
            sf = c.spec_size // 2 ** (len(c.depths) - 1) // c.patch_size // c.freq_ratio
            self.tscam_conv = nn.Conv2d(c.num_features, c.num_classes, kernel_size=(sf, 3), padding=(0, 1))
            self.head = nn.Linear(c.num_classes, c.num_classes)

        def logmel(self, wav):
            """[B, samples] -> log-mel [B, 1, frames, mel_bins], before ``bn0``."""
            return self.logmel_extractor(self.spectrogram_extractor(wav))

        def image(self, wav):
            """``reshape_wav2img`` of the normalised log-mel: [B, 1, spec, spec]."""
            c = self.config
            x = self.bn0(self.logmel(wav).transpose(1, 3)).transpose(1, 3)
            target_t, target_f = c.spec_size * c.freq_ratio, c.spec_size // c.freq_ratio
            if x.shape[2] > target_t:
                raise UserError(f"clap: {x.shape[2]} frames, more than the model's {target_t}")
            if x.shape[2] < target_t:
                x = F.interpolate(x, (target_t, x.shape[3]), mode="bicubic", align_corners=True)
            if x.shape[3] < target_f:
                x = F.interpolate(x, (x.shape[2], target_f), mode="bicubic", align_corners=True)
            x = x.permute(0, 1, 3, 2).contiguous()
            x = x.reshape(x.shape[0], x.shape[1], x.shape[2], c.freq_ratio, x.shape[3] // c.freq_ratio)
            x = x.permute(0, 1, 3, 2, 4).contiguous()
            return x.reshape(x.shape[0], x.shape[1], x.shape[2] * x.shape[3], x.shape[4])

        def forward(self, wav):
            """waveform [B, samples] -> HTSAT's 768-d ``embedding`` [B, num_features]."""
            x = self.patch_embed(self.image(wav))
            for layer in self.layers:
                x = layer(x)
            return self.norm(x).mean(dim=1)

    class ClapAudio(nn.Module):
        def __init__(self, c: HtsatConfig):
            super().__init__()
            self.config = c
            self.audio_branch = HTSAT(c)
            self.audio_transform = _mlp_layers(c.joint_dim)
            self.audio_projection = _projection(c.num_features, c.joint_dim)
            self.logit_scale_a = nn.Parameter(torch.ones([]) * math.log(1 / 0.07))
            self.text = None  # ClapText, when the text side is loaded

        def forward(self, wav):
            return F.normalize(self.audio_projection(self.audio_branch(wav)), dim=-1)

    torch.manual_seed(0)  # the loaded weights replace these; seeded so a bare build is reproducible
    return ClapAudio(cfg)


def _count(state: dict, pattern: str) -> int:
    rx = re.compile(pattern)
    found = {int(m.group(1)) for k in state for m in [rx.match(k)] if m}
    return max(found) + 1 if found else 0


def config_from_state(path: Path, state: dict) -> HtsatConfig:
    """The HTSAT sizes of a checkpoint, read from its tensor shapes."""
    def shape(key: str, ndim: int):
        return tuple(state_tensor(path, state, key, ndim, "a LAION-CLAP HTSAT checkpoint").shape)

    stft = shape("audio_branch.spectrogram_extractor.stft.conv_real.weight", 3)
    embed_dim, _, patch, _ = shape("audio_branch.patch_embed.proj.weight", 4)
    n_layers = _count(state, r"audio_branch\.layers\.(\d+)\.")
    if n_layers == 0:
        raise UserError(f"{path}: missing tensor 'audio_branch.layers.0.blocks.0.norm1.weight'")
    depths = tuple(_count(state, rf"audio_branch\.layers\.{i}\.blocks\.(\d+)\.") for i in range(n_layers))
    heads, window = [], None
    for i in range(n_layers):
        rows, h = shape(f"audio_branch.layers.{i}.blocks.0.attn.relative_position_bias_table", 2)
        heads.append(h)
        if i == 0:
            window = (math.isqrt(rows) + 1) // 2
    classes = shape("audio_branch.head.weight", 2)[0]
    joint = shape("audio_projection.0.weight", 2)[0]
    mel_bins = shape("audio_branch.bn0.weight", 1)[0]
    if SPEC_SIZE % mel_bins:
        raise UserError(f"{path}: tensor 'audio_branch.bn0.weight' has {mel_bins} mel bins, which do not "
                        f"divide HTSAT's {SPEC_SIZE}-pixel image")
    return HtsatConfig(embed_dim=embed_dim, depths=depths, num_heads=tuple(heads), window_size=window,
                       patch_size=patch, mel_bins=mel_bins, n_fft=stft[-1], num_classes=classes,
                       joint_dim=joint)


def released_state(path: Path) -> dict:
    """The CLAP state dict of a released file: ``state_dict`` unwrapped, ``module.`` stripped,
    RoBERTa's ``position_ids`` buffer dropped (laion_clap's ``load_state_dict``)."""
    blob = torch_load(path)
    state = blob.get("state_dict", blob) if isinstance(blob, dict) else blob
    if not isinstance(state, dict) or not state or not all(isinstance(k, str) for k in state):
        raise UserError(f"{path}: not a LAION-CLAP checkpoint (expected a dict with a 'state_dict')")
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    state.pop("text_branch.embeddings.position_ids", None)
    return state


def load(path: Path, tokenizer_dir: Path | None = None) -> ReleasedEmbedder:
    """CLAP's audio embedder; with ``tokenizer_dir`` (roberta-base's vocab.json + merges.txt) its
    text side too, as ``text_fn``."""
    state = released_state(path)
    audio_state = {k: v for k, v in state.items() if not k.startswith(TEXT_PREFIXES)}
    cfg = config_from_state(path, audio_state)
    model = build_audio(cfg)
    model.load_state_dict(check_state_dict(path, model, audio_state, OPTIONAL), strict=True)
    model.eval()
    text_fn = None
    if tokenizer_dir is not None:
        model.text = load_text(path, {k: v for k, v in state.items() if k.startswith(TEXT_PREFIXES)},
                               Path(tokenizer_dir))
        text_fn = embed_text
    return ReleasedEmbedder(
        name=NAME, path=path, sha256=sha256_of(path), sample_rate=SAMPLE_RATE, model=model,
        embed_fn=embed, has_logits=False, text_fn=text_fn,
        window_note="10 s: shorter clips tiled whole and zero-padded to 10 s (laion_clap 'repeatpad'); "
                    "longer ones cut to their first 10 s (the reference crops at random)")


def _import_transformers(why: str):
    try:
        import transformers
    except ImportError:
        raise UserError(f"{why} needs the transformers package (pip install 'regnet-bench[clap]')") from None
    return transformers


def load_tokenizer(tokenizer_dir: Path):
    """RoBERTa's byte-level BPE from local ``vocab.json`` + ``merges.txt`` (constructed from the
    two files, never through the hub)."""
    transformers = _import_transformers("--clap-tokenizer")
    if not tokenizer_dir.is_dir():
        raise UserError(f"--clap-tokenizer {tokenizer_dir}: not a folder (give the folder holding "
                        "roberta-base's vocab.json and merges.txt)")
    for name in TOKENIZER_FILES:
        if not (tokenizer_dir / name).is_file():
            raise UserError(f"--clap-tokenizer {tokenizer_dir}: no {name} (roberta-base's vocab.json and "
                            "merges.txt are needed)")
    try:
        # positional: (vocab_file, merges_file) in transformers 4, (vocab, merges) in 5
        return transformers.RobertaTokenizer(str(tokenizer_dir / "vocab.json"), str(tokenizer_dir / "merges.txt"))
    except Exception as e:  # noqa: BLE001 - a malformed file raises whatever its parser raises
        raise UserError(f"--clap-tokenizer {tokenizer_dir}: cannot read the tokenizer "
                        f"({str(e).splitlines()[0][:120] if str(e) else type(e).__name__})") from None


def build_text(text_state: dict, path: Path):
    """``text_branch`` (RobertaModel from a config read off the tensor shapes), ``text_transform``,
    ``text_projection``, ``logit_scale_t``."""
    import torch
    import torch.nn as nn

    transformers = _import_transformers("CLAP's text branch")

    def shape(key: str, ndim: int):
        # the CLAP score needs the text branch
        return tuple(state_tensor(path, text_state, key, ndim, "a LAION-CLAP text branch").shape)

    vocab, width = shape("text_branch.embeddings.word_embeddings.weight", 2)
    positions = shape("text_branch.embeddings.position_embeddings.weight", 2)[0]
    types = shape("text_branch.embeddings.token_type_embeddings.weight", 2)[0]
    inter = shape("text_branch.encoder.layer.0.intermediate.dense.weight", 2)[0]
    joint = shape("text_projection.0.weight", 2)[0]
    config = transformers.RobertaConfig(
        vocab_size=vocab, hidden_size=width, num_hidden_layers=_count(text_state, r"text_branch\.encoder\.layer\.(\d+)\."),
        num_attention_heads=max(1, width // 64), intermediate_size=inter, max_position_embeddings=positions,
        type_vocab_size=types, pad_token_id=1, bos_token_id=0, eos_token_id=2, layer_norm_eps=1e-5,
        hidden_act="gelu")

    class ClapText(nn.Module):
        def __init__(self):
            super().__init__()
            self.text_branch = transformers.RobertaModel(config)
            self.text_transform = _mlp_layers(joint)
            self.text_projection = _projection(width, joint)
            self.logit_scale_t = nn.Parameter(torch.ones([]) * math.log(1 / 0.07))
            self.tokenizer = None

        def forward(self, input_ids, attention_mask):
            out = self.text_branch(input_ids=input_ids, attention_mask=attention_mask)["pooler_output"]
            return nn.functional.normalize(self.text_projection(out), dim=-1)

    torch.manual_seed(0)
    return ClapText()


def load_text(path: Path, text_state: dict, tokenizer_dir: Path):
    tokenizer = load_tokenizer(tokenizer_dir)
    model = build_text(text_state, path)
    model.load_state_dict(check_state_dict(path, model, text_state, ("position_ids", "token_type_ids")),
                          strict=True)
    model.eval()
    vocab = model.text_branch.config.vocab_size
    if len(tokenizer) > vocab:
        raise UserError(f"--clap-tokenizer {tokenizer_dir}: {len(tokenizer)} tokens, more than the "
                        f"{vocab} of {path.name}'s text branch (not roberta-base's tokenizer?)")
    model.tokenizer = tokenizer
    return model


def audio_input(wav: np.ndarray, clip_samples: int = CLIP_SAMPLES) -> np.ndarray:
    """One clip as laion_clap feeds it (non-fusion, eval): int16 round trip, then 'repeatpad' to
    ``clip_samples`` or the first ``clip_samples`` of a longer clip (see the module docstring)."""
    x = (np.clip(np.asarray(wav, dtype=np.float32), -1.0, 1.0) * 32767.0).astype(np.int16)
    x = (x / 32767.0).astype(np.float32)
    if len(x) > clip_samples:
        return x[:clip_samples]
    out = np.zeros(clip_samples, dtype=np.float32)
    if len(x):
        tiled = np.tile(x, clip_samples // len(x))
        out[:len(tiled)] = tiled
    return out


def embed(model, wavs: list[np.ndarray]) -> list[EmbedOutput]:
    """Unit-length 512-d audio embeddings, one row per clip (no class logits)."""
    import torch

    if not wavs:
        return []
    x = torch.from_numpy(np.stack([audio_input(w) for w in wavs]))
    with torch.inference_mode():
        e = model(x).double().numpy()
    return [EmbedOutput(e[i:i + 1], None) for i in range(len(wavs))]


def embed_text(model, prompts: list[str]) -> np.ndarray:
    """Unit-length text embeddings [n, joint] of the prompts (laion_clap ``get_text_embedding``)."""
    import torch

    text = model.text
    if text is None:
        raise UserError("clap: the text side was not loaded (give --clap-tokenizer)")
    tok = text.tokenizer(list(prompts), padding="max_length", truncation=True, max_length=CONTEXT_LENGTH,
                         return_tensors="pt")
    with torch.inference_mode():
        return text(tok["input_ids"], tok["attention_mask"]).double().numpy()
