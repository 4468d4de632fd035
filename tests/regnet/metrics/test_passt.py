"""PaSST loader without the released weights. The `hear21passt` package cannot be imported here
(it needs timm and torchaudio), so its model and eval-mode mel front end are written out below
layer by layer from its ``models/passt.py`` (PaSST, PatchEmbed(flatten=False), Attention, Block,
Mlp) and ``models/preprocess.py`` (AugmentMelSTFT with torchaudio.compliance.kaldi.get_mel_banks),
with random weights, saved as the released state dict and loaded through the project's loader."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from regnet.errors import UserError
from regnet.metrics.embedders import EmbedderSpec, load_released
from regnet.metrics.embedders import passt

torch.set_num_threads(1)


def _kaldi_mel_banks_torch(num_bins, window_length_padded, sample_freq, low_freq, high_freq):
    """torchaudio.compliance.kaldi.get_mel_banks with vtln_warp_factor 1, as written there."""
    num_fft_bins = window_length_padded / 2
    fft_bin_width = sample_freq / window_length_padded
    mel_low = 1127.0 * math.log(1.0 + low_freq / 700.0)
    mel_high = 1127.0 * math.log(1.0 + high_freq / 700.0)
    delta = (mel_high - mel_low) / (num_bins + 1)
    b = torch.arange(num_bins).unsqueeze(1)
    left, center, right = mel_low + b * delta, mel_low + (b + 1.0) * delta, mel_low + (b + 2.0) * delta
    mel = 1127.0 * (1.0 + fft_bin_width * torch.arange(num_fft_bins) / 700.0).log()
    mel = mel.unsqueeze(0)
    up = (mel - left) / (center - left)
    down = (right - mel) / (right - center)
    return torch.max(torch.zeros(1), torch.min(up, down))


class RefMel(nn.Module):
    """AugmentMelSTFT(n_mels=128, sr=32000, win_length=800, hopsize=320, n_fft=1024, fmax=None,
    fmax_aug_range=2000) in eval mode."""

    def __init__(self):
        super().__init__()
        self.register_buffer("window", torch.hann_window(800, periodic=False), persistent=False)
        self.register_buffer("preemphasis_coefficient", torch.as_tensor([[[-.97, 1]]]), persistent=False)
        self.fmax = 32000 // 2 - 2000 // 2

    def forward(self, x):
        x = nn.functional.conv1d(x.unsqueeze(1), self.preemphasis_coefficient).squeeze(1)
        x = torch.stft(x, 1024, hop_length=320, win_length=800, center=True, normalized=False,
                       window=self.window, return_complex=True)
        x = torch.view_as_real(x)
        x = (x ** 2).sum(dim=-1)
        mel_basis = _kaldi_mel_banks_torch(128, 1024, 32000, 0.0, self.fmax)
        mel_basis = nn.functional.pad(mel_basis, (0, 1), mode="constant", value=0)
        melspec = torch.matmul(mel_basis, x)
        melspec = (melspec + 0.00001).log()
        return (melspec + 4.5) / 5.


class RefMlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class RefAttention(nn.Module):
    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(B, N, C))


class RefBlock(nn.Module):
    def __init__(self, dim, num_heads):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = RefAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = RefMlp(dim, dim * 4)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class RefPatchEmbed(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Conv2d(1, 768, kernel_size=16, stride=10)
        self.norm = nn.Identity()

    def forward(self, x):
        return self.norm(self.proj(x))


class RefPaSST(nn.Module):
    """passt_s_swa_p16_128_ap476 via get_model(fstride=10, tstride=10, input_fdim=128,
    input_tdim=998): distilled, 12 x 99 patch grid."""

    def __init__(self):
        super().__init__()
        self.patch_embed = RefPatchEmbed()
        self.cls_token = nn.Parameter(torch.randn(1, 1, 768) * .02)
        self.dist_token = nn.Parameter(torch.randn(1, 1, 768) * .02)
        self.new_pos_embed = nn.Parameter(torch.randn(1, 2, 768) * .02)
        self.freq_new_pos_embed = nn.Parameter(torch.randn(1, 768, 12, 1) * .02)
        self.time_new_pos_embed = nn.Parameter(torch.randn(1, 768, 1, 99) * .02)
        self.pos_drop = nn.Dropout(0.0)
        self.blocks = nn.Sequential(*[RefBlock(768, 12) for _ in range(12)])
        self.norm = nn.LayerNorm(768, eps=1e-6)
        self.pre_logits = nn.Identity()
        self.head = nn.Sequential(nn.LayerNorm(768), nn.Linear(768, 527))
        self.head_dist = nn.Linear(768, 527)

    def forward(self, x):
        x = self.patch_embed(x)
        B_dim, E_dim, F_dim, T_dim = x.shape
        time_new_pos_embed = self.time_new_pos_embed
        if x.shape[-1] != time_new_pos_embed.shape[-1]:
            time_new_pos_embed = time_new_pos_embed[:, :, :, :x.shape[-1]]
        x = x + time_new_pos_embed
        x = x + self.freq_new_pos_embed
        x = x.flatten(2).transpose(1, 2)
        cls_tokens = self.cls_token.expand(B_dim, -1, -1) + self.new_pos_embed[:, :1, :]
        dist_token = self.dist_token.expand(B_dim, -1, -1) + self.new_pos_embed[:, 1:, :]
        x = torch.cat((cls_tokens, dist_token, x), dim=1)
        x = self.norm(self.blocks(self.pos_drop(x)))
        features = (x[:, 0] + x[:, 1]) / 2
        return self.head(features), features


@pytest.fixture(scope="module")
def passt_file(tmp_path_factory):
    torch.manual_seed(11)
    ref = RefPaSST().eval()
    path = tmp_path_factory.mktemp("w") / "passt-s-f128-p16-s10-ap.476-swa.pt"
    torch.save(ref.state_dict(), path)
    return ref, path


def _audio(seconds, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(int(32000 * seconds)) / 32000
    return (0.3 * np.sin(2 * np.pi * 330 * t) + 0.05 * rng.normal(size=t.size)).astype(np.float32)


def test_passt_mel_bank_equals_kaldi_banks():
    want = nn.functional.pad(_kaldi_mel_banks_torch(128, 1024, 32000, 0.0, 15000.0), (0, 1))
    got = passt.kaldi_mel_banks()
    assert got.shape == (128, 513) and got.dtype == want.dtype and torch.equal(got, want)


def test_passt_loader_matches_the_reference(passt_file):
    ref, path = passt_file
    emb = load_released(EmbedderSpec("passt", path))
    assert emb.sample_rate == 32000 and emb.has_logits and len(emb.sha256) == 64
    wav = _audio(1.0, 0)
    with torch.no_grad():
        logits, feats = ref(RefMel()(torch.from_numpy(wav)[None]).unsqueeze(1))
    out = emb.embed([wav, _audio(0.05, 1)])
    assert out[0].embeddings.shape == (1, 768) and out[0].logits.shape == (527,)
    np.testing.assert_allclose(out[0].embeddings[0], feats[0].numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out[0].logits, logits[0].numpy(), rtol=1e-4, atol=1e-4)
    assert np.isfinite(out[1].logits).all()  # under 16 frames: zero-padded, not an error


def test_passt_long_clip_averages_windows(passt_file, monkeypatch):
    """Longer than the model window: windows every scene hop over the reflect-padded clip,
    averaged (hear21passt get_scene_embeddings). Shrunk to a 1 s window / 0.25 s hop for speed."""
    _, path = passt_file
    monkeypatch.setattr(passt, "MAX_WINDOW", 32000)
    monkeypatch.setattr(passt, "SCENE_HOP", 8000)
    emb = load_released(EmbedderSpec("passt", path))
    wav = _audio(1.5, 2)
    padded = np.pad(wav, (16000, 16000), mode="reflect")
    starts = range(0, len(padded) - 32000 + 1, 8000)
    assert len(starts) == 7
    outs = emb.embed([padded[s:s + 32000] for s in starts])
    got = emb.embed([wav])[0]
    np.testing.assert_allclose(got.embeddings[0], np.mean([o.embeddings[0] for o in outs], axis=0),
                               rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got.logits, np.mean([o.logits for o in outs], axis=0), rtol=1e-4, atol=1e-4)


def test_passt_bad_file_names_the_tensor(passt_file, tmp_path):
    ref, _ = passt_file
    state = ref.state_dict()
    state["time_new_pos_embed"] = torch.zeros(1, 768, 1, 62)
    torch.save(state, tmp_path / "p.pt")
    with pytest.raises(UserError, match=r"tensor 'time_new_pos_embed' has shape \(1, 768, 1, 62\), expected \(1, 768, 1, 99\)"):
        load_released(EmbedderSpec("passt", tmp_path / "p.pt"))
    state = ref.state_dict()
    del state["head_dist.bias"]
    torch.save({"model": state}, tmp_path / "q.pt")
    with pytest.raises(UserError, match="missing tensor 'head_dist.bias'"):
        load_released(EmbedderSpec("passt", tmp_path / "q.pt"))
