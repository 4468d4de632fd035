"""ImageBind loader and IB-score without the released weights. The imagebind package needs
torchaudio, timm, einops, pytorchvideo and iopath, none installed here, so the released file's
layer list for the vision and audio towers is written out below from the reference code
(facebookresearch/ImageBind ``imagebind_model.py`` ``_create_modality_*``, ``PatchEmbedGeneric``,
``RGBDTPreprocessor``, ``SimpleTransformer`` / ``BlockWithMasking`` with ``nn.MultiheadAttention``,
``SelectElement``, ``Normalize``, ``LearnableLogitScaling``), filled with random tiny weights next
to a few text / depth tensors (which the loader must skip), saved, loaded through the project's
loader and compared with a forward pass written here from those classes: multi-head attention
with the audio trunk's ``bias_k`` / ``bias_v`` appended after the projection, as
``F.multi_head_attention_forward`` does. The inputs are built here too: the 2 s windows, Kaldi
fbank in numpy from Kaldi's definition, the crops and frame pairs by explicit loops."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pandas as pd
import pytest
import soundfile
import torch
import torch.nn.functional as F

from regnet.cli import main
from regnet.clips import ClipRecord, write_clips
from regnet.data.video import write_video
from regnet.errors import UserError
from regnet.metrics.embedders import EmbedderSpec, load_released, parse_spec
from regnet.metrics.embedders import imagebind as ib

torch.set_num_threads(1)

# A tiny model in the released layout: widths divisible by the released 16 / 12 heads, 28x28
# frames (2x2 patches of 14), the released audio stem (16x16 / stride 10 on 128 x 204: 12 x 19).
OUT, VD, VMLP, IMG, PATCH, AD, AMLP = 16, 32, 128, 28, 14, 24, 96
V_DEPTH, A_DEPTH, VH, AH = 1, 2, 16, 12
N_A_TOK = 12 * 19
SR = 16000


def _layer_list() -> dict[str, tuple[int, ...]]:
    """Key -> shape of the released state dict's vision and audio tensors, at the tiny sizes."""
    L: dict[str, tuple[int, ...]] = {}

    def ln(k, d):
        L[k + ".weight"], L[k + ".bias"] = (d,), (d,)

    def block(k, d, hidden, bias_kv):
        L[k + "attn.in_proj_weight"], L[k + "attn.in_proj_bias"] = (3 * d, d), (3 * d,)
        if bias_kv:
            L[k + "attn.bias_k"], L[k + "attn.bias_v"] = (1, 1, d), (1, 1, d)
        L[k + "attn.out_proj.weight"], L[k + "attn.out_proj.bias"] = (d, d), (d,)
        ln(k + "norm_1", d)
        L[k + "mlp.fc1.weight"], L[k + "mlp.fc1.bias"] = (hidden, d), (hidden,)
        L[k + "mlp.fc2.weight"], L[k + "mlp.fc2.bias"] = (d, hidden), (d,)
        ln(k + "norm_2", d)

    p = "modality_preprocessors."
    L[p + "vision.cls_token"] = (1, 1, VD)
    L[p + "vision.rgbt_stem.proj.1.weight"] = (VD, 3, 2, PATCH, PATCH)  # proj.0 = PadIm2Video
    L[p + "vision.pos_embedding_helper.pos_embed"] = (1, (IMG // PATCH) ** 2 + 1, VD)
    L[p + "audio.cls_token"] = (1, 1, AD)
    L[p + "audio.rgbt_stem.proj.weight"] = (AD, 1, 16, 16)
    ln(p + "audio.rgbt_stem.norm_layer", AD)
    L[p + "audio.pos_embedding_helper.pos_embed"] = (1, N_A_TOK + 1, AD)
    ln("modality_trunks.vision.pre_transformer_layer.0", VD)
    for i in range(V_DEPTH):
        block(f"modality_trunks.vision.blocks.{i}.", VD, VMLP, bias_kv=False)
    for i in range(A_DEPTH):
        block(f"modality_trunks.audio.blocks.{i}.", AD, AMLP, bias_kv=True)
    ln("modality_heads.vision.0", VD)
    L["modality_heads.vision.2.weight"] = (OUT, VD)
    ln("modality_heads.audio.0", AD)
    L["modality_heads.audio.2.weight"] = (OUT, AD)
    L["modality_postprocessors.audio.1.log_logit_scale"] = ()
    return L


# tensors of the other modalities, as in the released file; the loader must not look at them
OTHER = {"modality_preprocessors.text.token_embedding.weight": (50, 8),
         "modality_preprocessors.text.mask": (7, 7),
         "modality_trunks.text.blocks.0.attn.in_proj_weight": (24, 8),
         "modality_heads.text.proj.0.weight": (8,),
         "modality_postprocessors.text.1.log_logit_scale": (),
         "modality_preprocessors.depth.rgbt_stem.proj.weight": (8, 1, 16, 16),
         "modality_trunks.imu.blocks.0.attn.bias_k": (1, 1, 8)}


def _random_state(seed=0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, shape in {**_layer_list(), **OTHER}.items():
        x = torch.randn(shape, generator=g)
        if k.endswith(".weight") and len(shape) == 1:  # LayerNorm gains near 1
            x = 1.0 + 0.1 * x
        elif k.endswith("log_logit_scale"):
            x = torch.tensor(math.log(20.0))
        else:
            x = x * (0.3 if len(shape) > 1 else 0.1)
        out[k] = x
    return out


# --- the reference forward pass, on the state dict ---------------------------------------------

def _ln(x, s, k, eps):
    return F.layer_norm(x, x.shape[-1:], s[k + ".weight"], s[k + ".bias"], eps)


def _mha(x, s, k, heads, bias_kv):
    """nn.MultiheadAttention(x, x, x) on batch-first x: in_proj, bias_k / bias_v appended to the
    projected keys / values, scaled dot product per head, out_proj."""
    b, n, d = x.shape
    q, kk, v = F.linear(x, s[k + ".in_proj_weight"], s[k + ".in_proj_bias"]).chunk(3, -1)
    if bias_kv:
        kk = torch.cat((kk, s[k + ".bias_k"].expand(b, 1, d)), 1)
        v = torch.cat((v, s[k + ".bias_v"].expand(b, 1, d)), 1)
    hd = d // heads

    def split(t):
        return t.reshape(b, t.shape[1], heads, hd).transpose(1, 2)

    att = torch.softmax(split(q) @ split(kk).transpose(-1, -2) / math.sqrt(hd), -1) @ split(v)
    return F.linear(att.transpose(1, 2).reshape(b, n, d), s[k + ".out_proj.weight"], s[k + ".out_proj.bias"])


def _trunk(x, s, k, depth, heads, bias_kv):
    for i in range(depth):
        bk = f"{k}.blocks.{i}."
        x = x + _mha(_ln(x, s, bk + "norm_1", 1e-6), s, bk + "attn", heads, bias_kv)
        y = F.gelu(F.linear(_ln(x, s, bk + "norm_2", 1e-6), s[bk + "mlp.fc1.weight"], s[bk + "mlp.fc1.bias"]))
        x = x + F.linear(y, s[bk + "mlp.fc2.weight"], s[bk + "mlp.fc2.bias"])
    return x


def _ref_vision(s, clips):
    """[N, 3, 2, H, W] -> unit embeddings [N, OUT]: Conv3d stem (no bias), CLS, pos, pre-LN trunk,
    head LN + CLS + Linear, Normalize."""
    p = "modality_preprocessors.vision."
    x = F.conv3d(clips, s[p + "rgbt_stem.proj.1.weight"], stride=(2, PATCH, PATCH)).flatten(2).transpose(1, 2)
    x = torch.cat((s[p + "cls_token"].expand(x.shape[0], -1, -1), x), 1) + s[p + "pos_embedding_helper.pos_embed"]
    x = _ln(x, s, "modality_trunks.vision.pre_transformer_layer.0", 1e-6)
    x = _trunk(x, s, "modality_trunks.vision", V_DEPTH, VH, bias_kv=False)
    x = F.linear(_ln(x, s, "modality_heads.vision.0", 1e-6)[:, 0], s["modality_heads.vision.2.weight"])
    return F.normalize(x, dim=-1)


def _ref_audio(s, mel):
    """[N, 1, 128, 204] -> 20 x unit embeddings [N, OUT]: Conv2d stem, LayerNorm (eps 1e-5), CLS,
    pos, trunk with bias_kv, head, Normalize, LearnableLogitScaling (fixed)."""
    p = "modality_preprocessors.audio."
    x = F.conv2d(mel, s[p + "rgbt_stem.proj.weight"], stride=10).flatten(2).transpose(1, 2)
    x = _ln(x, s, p + "rgbt_stem.norm_layer", 1e-5)
    x = torch.cat((s[p + "cls_token"].expand(x.shape[0], -1, -1), x), 1) + s[p + "pos_embedding_helper.pos_embed"]
    x = _trunk(x, s, "modality_trunks.audio", A_DEPTH, AH, bias_kv=True)
    x = F.linear(_ln(x, s, "modality_heads.audio.0", 1e-6)[:, 0], s["modality_heads.audio.2.weight"])
    return torch.clip(s["modality_postprocessors.audio.1.log_logit_scale"].exp(), max=100) * F.normalize(x, dim=-1)


# --- the reference inputs ----------------------------------------------------------------------

def _np_fbank(x: np.ndarray) -> np.ndarray:
    """Kaldi's fbank (as torchaudio.compliance.kaldi.fbank with ImageBind's options), in float64:
    25 ms frames every 10 ms, snip edges, DC removal, pre-emphasis 0.97 (replicate edge),
    symmetric Hann, 512-point FFT power, 128 mel triangles (mel = 1127 ln(1 + f/700)) 20-8000 Hz
    over the 256 bins below Nyquist, log with float32 eps floor. -> [frames, 128]."""
    n = 1 + (len(x) - 400) // 160
    fr = np.stack([x[i * 160:i * 160 + 400] for i in range(n)]).astype(np.float64)
    fr = fr - fr.mean(1, keepdims=True)
    fr = fr - 0.97 * np.concatenate([fr[:, :1], fr[:, :-1]], 1)
    fr = fr * (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 399))
    power = np.abs(np.fft.rfft(fr, n=512)) ** 2

    def mel(f):
        return 1127.0 * np.log(1.0 + f / 700.0)

    lo, hi = mel(20.0), mel(8000.0)
    d = (hi - lo) / 129
    fm = mel(np.arange(256) * 31.25)
    bank = np.zeros((128, 257))
    for b in range(128):
        left, centre, right = lo + b * d, lo + (b + 1) * d, lo + (b + 2) * d
        bank[b, :256] = np.maximum(0.0, np.minimum((fm - left) / (centre - left), (right - fm) / (right - centre)))
    return np.log(np.maximum(power @ bank.T, np.finfo(np.float32).eps))


def _ref_audio_input(wav: np.ndarray, windows) -> torch.Tensor:
    """ImageBind load_and_transform_audio_data on a 16 kHz waveform, given the window sample
    ranges: in-place demeaning of each window on the shared waveform, fbank, pad / cut to 204,
    (x + 4.268) / 9.138."""
    w = wav.astype(np.float64).copy()
    out = []
    for s, e in windows:
        w[s:e] -= w[s:e].mean()
        fb = _np_fbank(w[s:e]).T
        fb = np.pad(fb, ((0, 0), (0, max(0, 204 - fb.shape[1]))))[:, :204]
        out.append((fb + 4.268) / 9.138)
    return torch.from_numpy(np.stack(out)[:, None])


def _ref_video_input(frames: np.ndarray) -> torch.Tensor:
    """av-benchmark: CLIP-normalise, 3 crops (ImageBind uniform_crop), clips of frames (i, i+1),
    pair-major, as [N, 3, 2, S, S]."""
    x = frames.astype(np.float64) / 255.0
    x = (x - np.array([0.48145466, 0.4578275, 0.40821073])) / np.array([0.26862954, 0.26130258, 0.27577711])
    h, w = x.shape[1:3]
    if h > w:
        offs = [(0, 0), (math.ceil((h - IMG) / 2), 0), (h - IMG, 0)]
    else:
        offs = [(0, 0), (0, math.ceil((w - IMG) / 2)), (0, w - IMG)]
    clips = []
    for i in range(len(frames) - 1):
        for top, left in offs:
            pair = x[i:i + 2, top:top + IMG, left:left + IMG]  # (2, S, S, 3)
            clips.append(pair.transpose(3, 0, 1, 2))  # (3, 2, S, S)
    return torch.from_numpy(np.stack(clips))


@pytest.fixture(scope="module")
def ib_file(tmp_path_factory):
    state = _random_state()
    path = tmp_path_factory.mktemp("w") / "imagebind_huge.pth"
    torch.save(state, path)
    return state, path


def _double(state):
    return {k: v.double() for k, v in state.items()}


def test_loader_matches_the_reference_forward(ib_file):
    state, path = ib_file
    m = load_released(EmbedderSpec("imagebind", path))
    c = m.config
    assert (c.out_dim, c.v_dim, c.v_depth, c.v_mlp, c.image, c.patch, c.a_dim, c.a_depth, c.a_mlp) == \
        (OUT, VD, V_DEPTH, VMLP, IMG, PATCH, AD, A_DEPTH, AMLP)
    assert m.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() and m.sample_rate == 16000
    g = torch.Generator().manual_seed(1)
    clips = torch.randn(4, 3, 2, IMG, IMG, generator=g, dtype=torch.float64)
    mel = torch.randn(3, 1, 128, 204, generator=g, dtype=torch.float64)
    net = m.model.double()
    s = _double(state)
    with torch.inference_mode():
        v, a = net.embed_vision(clips), net.embed_audio(mel)
    torch.testing.assert_close(v, _ref_vision(s, clips), rtol=0, atol=1e-9)
    torch.testing.assert_close(a, _ref_audio(s, mel), rtol=0, atol=1e-9)
    assert a.norm(dim=-1).sub(20.0).abs().max() < 1e-5  # the fixed scale 20 (log 20 stored in float32)
    assert (v[0] - v[1]).abs().max() > 1e-3 and (a[0] - a[1]).abs().max() > 1e-3  # the inputs matter


def test_embeddings_of_frames_and_audio_match_the_reference_pipeline(ib_file):
    state, path = ib_file
    m = ib.load(path)
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 255, (3, IMG, 40, 3)).astype(np.uint8)  # wide: crops at x 0, 6, 12
    t = np.arange(int(3.0 * SR)) / SR
    wav = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.1 * rng.standard_normal(len(t)) + 0.05).astype(np.float32)
    s = _double(state)
    with torch.inference_mode():
        want_v = _ref_vision(s, _ref_video_input(frames)).mean(0).numpy()
        # 3 s: windows start at 0, 0.5 and 1 s (ConstantClipsPerVideoSampler: (d - 2) / 2 apart)
        want_a = _ref_audio(s, _ref_audio_input(wav, [(0, 32000), (8000, 40000), (16000, 48000)])).mean(0).numpy()
    got_v, got_a = m.video_embedding(frames), m.audio_embedding(wav)
    np.testing.assert_allclose(got_v, want_v, rtol=0, atol=1e-5)
    np.testing.assert_allclose(got_a / 20, want_a / 20, rtol=0, atol=1e-5)  # 20 x a unit vector
    want = float(want_v @ want_a / (np.linalg.norm(want_v) * np.linalg.norm(want_a)))
    assert ib.ib_score(got_v, got_a) == pytest.approx(want, abs=1e-6)
    assert m.audio_embedding(wav[:399]) is None  # no 25 ms fbank frame: no embedding


@pytest.mark.parametrize("change, named", [
    ("drop", "missing tensor 'modality_trunks.audio.blocks.1.attn.bias_k'"),
    ("scale", "missing tensor 'modality_postprocessors.audio.1.log_logit_scale'"),
    ("stem", "missing tensor 'modality_preprocessors.vision.rgbt_stem.proj.1.weight'"),
    ("extra_audio", "unexpected tensor 'modality_heads.audio.3.weight'"),
    ("extra_vision", "unexpected tensor 'modality_trunks.vision.blocks.0.attn.bias_k'"),
    ("shape", "tensor 'modality_heads.audio.2.weight' has shape (16, 25), expected (16, 24)"),
    ("pos", "tensor 'modality_preprocessors.audio.pos_embedding_helper.pos_embed' has shape (1, 200, 24), "
            "expected (1, 229, 24)"),
])
def test_bad_files_are_one_line_errors_naming_the_tensor(ib_file, tmp_path, change, named):
    state, _ = ib_file
    s = dict(state)
    if change == "drop":
        del s["modality_trunks.audio.blocks.1.attn.bias_k"]
    elif change == "scale":
        del s["modality_postprocessors.audio.1.log_logit_scale"]
    elif change == "stem":
        del s["modality_preprocessors.vision.rgbt_stem.proj.1.weight"]
    elif change == "extra_audio":
        s["modality_heads.audio.3.weight"] = torch.zeros(OUT, AD)
    elif change == "extra_vision":
        s["modality_trunks.vision.blocks.0.attn.bias_k"] = torch.zeros(1, 1, VD)
    elif change == "shape":
        s["modality_heads.audio.2.weight"] = torch.zeros(OUT, AD + 1)
    else:
        s["modality_preprocessors.audio.pos_embedding_helper.pos_embed"] = torch.zeros(1, 200, AD)
    bad = tmp_path / "bad.pth"
    torch.save(s, bad)
    with pytest.raises(UserError) as e:
        load_released(EmbedderSpec("imagebind", bad))
    assert named in str(e.value) and "\n" not in str(e.value)


def test_other_modalities_are_not_read(ib_file, tmp_path):
    state, _ = ib_file
    s = dict(state)
    s["modality_trunks.text.blocks.0.attn.in_proj_weight"] = torch.zeros(3)  # malformed, but unread
    del s["modality_preprocessors.text.token_embedding.weight"]
    p = tmp_path / "other.pth"
    torch.save(s, p)
    assert ib.load(p).config.v_dim == VD


def test_fbank_equals_kaldi_written_out():
    rng = np.random.default_rng(5)
    t = np.arange(8000) / SR
    x = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(8000)).astype(np.float32)
    got = ib.kaldi_fbank(torch.from_numpy(x)).numpy()
    want = _np_fbank(x.astype(np.float64))
    assert got.shape == (48, 128)  # 1 + (8000 - 400) // 160
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-4)
    assert ib.kaldi_fbank(torch.from_numpy(x[:399])).shape == (0, 128)


def test_audio_windows_and_short_clips():
    assert ib.audio_windows(5 * SR) == [(0, 32000), (24000, 56000), (48000, 80000)]
    assert ib.audio_windows(2 * SR) == [(0, 32000)] * 3
    assert ib.audio_windows(SR // 2) == [(0, 32000)] * 3  # shorter than 2 s: the whole clip, three times
    rng = np.random.default_rng(0)
    wav = (0.2 * rng.standard_normal(SR // 2)).astype(np.float32)  # 0.5 s: 48 fbank frames
    x = ib.audio_input(wav).numpy()
    assert x.shape == (3, 1, 128, 204)
    # the same samples each time (demeaned again in place: float32 rounding apart, identical)
    np.testing.assert_allclose(x[0], x[2], atol=1e-4)
    # the fbank is zero-padded before the normalisation, as waveform2melspec then Normalize do
    np.testing.assert_allclose(x[:, :, :, 48:], 4.268 / 9.138, atol=1e-6)
    assert np.abs(x[:, :, :, :48] - 4.268 / 9.138).mean() > 0.1  # the real frames are not padding


def test_video_clips_are_crops_of_frame_pairs():
    cfg = ib.ImageBindConfig(image=IMG)
    # frame t, column x holds 10 t + x (< 256): a crop's first column says where it starts
    wide = np.stack([np.broadcast_to((10 * t + np.arange(40))[None, :, None], (IMG, 40, 3)) for t in range(4)])
    x = ib.video_clips(wide.astype(np.uint8), cfg)
    assert tuple(x.shape) == (9, 3, 2, IMG, IMG)  # 3 pairs x 3 crops
    raw = (x[:, 0, :, 0, 0].numpy() * 0.26862954 + 0.48145466) * 255  # red channel, first column
    want = [[10 * i + left, 10 * (i + 1) + left] for i in range(3) for left in (0, 6, 12)]
    np.testing.assert_allclose(raw, want, atol=1e-3)
    tall = np.transpose(wide, (0, 2, 1, 3))[:2]  # 40 high: crops at y 0, 6, 12
    y = ib.video_clips(np.ascontiguousarray(tall).astype(np.uint8), cfg)
    raw = (y[:, 0, :, 0, 0].numpy() * 0.26862954 + 0.48145466) * 255
    np.testing.assert_allclose(raw, [[0, 10], [6, 16], [12, 22]], atol=1e-3)
    assert ib.video_frame_count(8.0) == 4 and ib.video_frame_count(5.0) == 2 and ib.video_frame_count(3.9) == 1


def _write_clip(root, name, video_s, audio_s, seed):
    rng = np.random.default_rng(seed)
    n = int(round(video_s * 25))
    # frame i is 2 i at the top-left corner, plus a horizontal ramp
    frames = np.stack([np.broadcast_to((2 * i + np.arange(48) // 2)[None, :, None], (32, 48, 3))
                       for i in range(n)]).astype(np.uint8)
    video = write_video(root / f"{name}.mp4", frames, 25.0)
    wavs = {}
    for system in ("real", "gen"):
        wav = (0.2 * rng.standard_normal(int(audio_s * SR))).astype(np.float32)
        wavs[system] = root / f"{name}_{system}.wav"
        soundfile.write(wavs[system], wav, SR)
    return video, wavs


def test_evaluate_adds_ib_score_with_sha(ib_file, tmp_path, capsys):
    _, path = ib_file
    root = tmp_path / "clips"
    root.mkdir()
    # 4 s clips: frames at 0 and 2 s. 'b' has 1 s of audio (three copies, fbank padded); 'c' 20 ms
    # (no fbank frame: left out and named)
    made = {vid: _write_clip(root, vid, 4.0, secs, k) for k, (vid, secs) in enumerate((("a", 4.0), ("b", 1.0),
                                                                                       ("c", 0.02)))}
    csvs = []
    for system in ("real", "gen"):
        recs = [ClipRecord(system, vid, "hit", wavs[system], wavs[system], source_video=str(video),
                           duration_s=4.0) for vid, (video, wavs) in made.items()]
        (root / system).mkdir()
        write_clips(root / system / "clips.csv", recs)
        csvs.append(str(root / system / "clips.csv"))
    out = tmp_path / "res"
    rc = main(["evaluate", "--clips", *csvs, "--embedding", f"imagebind={path}", "--bootstrap", "20",
               "--out", str(out)])
    assert rc == 0
    capsys.readouterr()
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    s = pd.read_csv(out / "objective.csv")
    rel = s[s.embedder == "imagebind"]
    assert set(rel.metric) == {"ib_score_imagebind"} and set(rel.weights_sha256) == {sha}
    assert set(rel.sample_rate_hz) == {16000}
    clips = pd.read_csv(out / "objective_clips_embedders.csv")
    assert set(clips.metric) == {"ib_score_imagebind"}
    per = clips.set_index(["system", "video_id"])["value"]
    assert per.loc[[("gen", "c"), ("real", "c")]].isna().all()
    ok = per.drop(index=[("gen", "c"), ("real", "c")])
    assert ok.notna().all() and (ok.abs() <= 1 + 1e-9).all()
    # the same clip through the model directly gives the same score; the frames are those at 0 and 2 s
    from regnet.data.audio import load_audio
    from regnet.metrics.evaluate import _ib_frames

    m = ib.load(path)
    frames = _ib_frames(made["a"][0], 4.0, IMG)
    assert frames.shape == (2, IMG, 42, 3)
    assert abs(int(frames[0, 0, 0, 0]) - 0) <= 4 and abs(int(frames[1, 0, 0, 0]) - 100) <= 4
    want = ib.ib_score(m.video_embedding(frames), m.audio_embedding(load_audio(made["a"][1]["gen"], SR, 4.0)))
    assert per.loc[("gen", "a")] == pytest.approx(want, abs=1e-6)
    row = rel.set_index("system").loc["gen"]
    # Both files keep 6 significant digits (%.6g): the mean of rounded scores and the rounded mean may
    # differ in the last digit.
    assert row["n"] == 2 and row["mean"] == pytest.approx(ok.loc["gen"].mean(), rel=1e-5, abs=2e-6)
    assert row.ci95_low <= row["mean"] <= row.ci95_high
    md = (out / "objective.md").read_text()
    assert "IB-score (imagebind) ↑" in md and sha in md and "gen/c" in md and "real/c" in md
    from mturk.report.objective import _sign, load_objective

    wide, metrics = load_objective(out / "objective_clips.csv")
    assert "ib_score_imagebind" in metrics and _sign("ib_score_imagebind") == 1.0
    assert wide.loc[("gen", "a"), "ib_score_imagebind"] == pytest.approx(want, abs=1e-6)


def test_short_clip_video_is_its_first_and_last_frame(tmp_path):
    from regnet.metrics.evaluate import _ib_frames

    frames = np.stack([np.full((32, 48, 3), 2 * i, np.uint8) for i in range(30)])  # 1.2 s
    video = write_video(tmp_path / "v.mp4", frames, 25.0)
    got = _ib_frames(video, 1.2, IMG)  # under 4 s: one pair, the clip's first and last frame
    assert got.shape == (2, IMG, 42, 3)
    assert abs(int(got[0, 5, 5, 0]) - 0) <= 4 and abs(int(got[1, 5, 5, 0]) - 58) <= 4


def test_spec_names_imagebind():
    assert parse_spec("imagebind=/w/imagebind_huge.pth").name == "imagebind"
