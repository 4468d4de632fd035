"""Synchformer loader and DeSync without the released weights. No package ships Synchformer's code
(av-benchmark and the Synchformer repository need timm, transformers, einops and torchaudio, none
installed here), so the released file's layer list is written out below from the reference code
(Synchformer ``model/modules/feat_extractors/visual/motionformer.py`` +
``motionformer_src/vit_helper.py`` DividedSpaceTimeBlock / DividedAttention,
``audio/ast.py`` + ``hf_src/modeling_ast.py``, ``model/modules/transformer.py`` Block, and
av-benchmark's ``synchformer.py`` / GlobalTransformer with its 198-position embedding and 21-class
``off_head``), filled with random tiny weights, saved, loaded through the project's loader and
compared with a forward pass written here as the reference code does it: divided attention
with one explicit loop per frame (space) or per patch position (time), the CLS-pooling
``nn.TransformerEncoderLayer`` (pre-norm) written out, HF AST layers, minGPT blocks."""

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
from regnet.metrics.embedders import synchformer as sf

torch.set_num_threads(1)

# A tiny model in the released layout: width 24 (divisible by the released 12 / 12 / 8 heads),
# one block per stack, 32x32 frames (2x2 patches), 4-frame segments (2 tubelets), 2 segments.
D, MLP, IMG, PATCH, TUB, TV, SEG = 24, 48, 32, 16, 2, 2, 2
N_MELS, SPEC_T, STRIDE = 128, 66, 10
NF, NT = (N_MELS - PATCH) // STRIDE + 1, (SPEC_T - PATCH) // STRIDE + 1  # 12 x 6 AST patches
VH, AH, TH = 12, 12, 8


def _layer_list() -> dict[str, tuple[int, ...]]:
    """Key -> shape of the released state dict, at the tiny sizes above."""
    L: dict[str, tuple[int, ...]] = {}

    def lin(k, o, i):
        L[k + ".weight"], L[k + ".bias"] = (o, i), (o,)

    def ln(k):
        L[k + ".weight"], L[k + ".bias"] = (D,), (D,)

    def pool(k):  # Synchformer BaseEncoderLayer(nn.TransformerEncoderLayer) + cls_token
        L[k + ".cls_token"] = (1, 1, D)
        L[k + ".self_attn.in_proj_weight"], L[k + ".self_attn.in_proj_bias"] = (3 * D, D), (3 * D,)
        lin(k + ".self_attn.out_proj", D, D)
        lin(k + ".linear1", MLP, D)
        lin(k + ".linear2", D, MLP)
        ln(k + ".norm1")
        ln(k + ".norm2")

    v = "vfeat_extractor."
    L[v + "cls_token"], L[v + "pos_embed"], L[v + "temp_embed"] = (1, 1, D), (1, (IMG // PATCH) ** 2 + 1, D), (1, TV, D)
    L[v + "patch_embed.proj.weight"], L[v + "patch_embed.proj.bias"] = (D, 3, PATCH, PATCH), (D,)
    L[v + "patch_embed_3d.proj.weight"], L[v + "patch_embed_3d.proj.bias"] = (D, 3, TUB, PATCH, PATCH), (D,)
    b = v + "blocks.0."
    for n in ("norm1", "norm2", "norm3"):
        ln(b + n)
    for a in ("attn", "timeattn"):
        lin(b + a + ".qkv", 3 * D, D)
        lin(b + a + ".proj", D, D)
    lin(b + "mlp.fc1", MLP, D)
    lin(b + "mlp.fc2", D, MLP)
    ln(v + "norm")
    pool(v + "spatial_attn_agg")
    a = "afeat_extractor."
    e = a + "ast.embeddings."
    L[e + "cls_token"], L[e + "distillation_token"] = (1, 1, D), (1, 1, D)
    L[e + "position_embeddings"] = (1, NF * NT + 2, D)
    L[e + "patch_embeddings.projection.weight"], L[e + "patch_embeddings.projection.bias"] = (D, 1, PATCH, PATCH), (D,)
    lay = a + "ast.encoder.layer.0."
    for n in ("query", "key", "value"):
        lin(lay + "attention.attention." + n, D, D)
    lin(lay + "attention.output.dense", D, D)
    lin(lay + "intermediate.dense", MLP, D)
    lin(lay + "output.dense", D, MLP)
    ln(lay + "layernorm_before")
    ln(lay + "layernorm_after")
    ln(a + "ast.layernorm")
    pool(a + "freq_attn_agg")
    lin("vproj", D, D)
    lin("aproj", D, D)
    t = "transformer."
    ln(t + "vis_in_lnorm")
    ln(t + "aud_in_lnorm")
    L[t + "OFF_tok"], L[t + "MOD_tok"] = (1, 1, D), (1, 1, D)
    L[t + "pos_emb_cfg.pos_emb"] = (1, 2 + SEG * (TV + NT), D)
    tb = t + "blocks.0."
    ln(tb + "ln1")
    ln(tb + "ln2")
    for n in ("key", "query", "value", "proj"):
        lin(tb + "attn." + n, D, D)
    lin(tb + "mlp.0", 4 * D, D)
    lin(tb + "mlp.2", D, 4 * D)
    ln(t + "ln_f")
    lin(t + "off_head", sf.NUM_OFFSETS, D)
    return L


def _random_state(seed=0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, shape in _layer_list().items():
        x = torch.randn(shape, generator=g)
        if k.endswith(".weight") and len(shape) == 1:  # LayerNorm gains near 1
            x = 1.0 + 0.1 * x
        else:
            x = x * (0.3 if len(shape) > 1 else 0.1)
        out[k] = x
    return out


# --- the reference forward pass, on the state dict ---------------------------------------------

def _ln(x, s, k, eps=1e-5):
    return F.layer_norm(x, x.shape[-1:], s[k + ".weight"], s[k + ".bias"], eps)


def _lin(x, s, k):
    return F.linear(x, s[k + ".weight"], s[k + ".bias"])


def _heads(x, h):  # (B, N, C) -> (B, h, N, C/h)
    b, n, c = x.shape
    return x.view(b, n, h, c // h).permute(0, 2, 1, 3)


def _merge(x):  # (B, h, N, d) -> (B, N, h*d)
    b, h, n, d = x.shape
    return x.permute(0, 2, 1, 3).reshape(b, n, h * d)


def _mha(q, k, v, h):
    q, k, v = _heads(q, h), _heads(k, h), _heads(v, h)
    att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), -1)
    return _merge(att @ v)


def _divided(x, s, k, mode, frames, per_frame, h=VH):
    """vit_helper.DividedAttention: the CLS query attends to all tokens; token (f, p) attends to CLS
    and to the tokens of its frame f (space) or of its position p (time)."""
    q, kk, v = (_heads(t, h) for t in _lin(x, s, k + ".qkv").chunk(3, -1))
    q = q * (q.shape[-1] ** -0.5)
    out = torch.zeros_like(q)
    out[:, :, :1] = torch.softmax(q[:, :, :1] @ kk.transpose(-1, -2), -1) @ v
    groups = ([[1 + f * per_frame + p for p in range(per_frame)] for f in range(frames)] if mode == "space"
              else [[1 + f * per_frame + p for f in range(frames)] for p in range(per_frame)])
    for idx in groups:
        keys = torch.cat((kk[:, :, :1], kk[:, :, idx]), 2)
        vals = torch.cat((v[:, :, :1], v[:, :, idx]), 2)
        out[:, :, idx] = torch.softmax(q[:, :, idx] @ keys.transpose(-1, -2), -1) @ vals
    return _lin(_merge(out), s, k + ".proj")


def _pool(x, s, k, h):
    """BaseEncoderLayer: CLS prepended, nn.TransformerEncoderLayer(norm_first=True, GELU, eps 1e-6)
    written out, CLS output returned."""
    x = torch.cat((s[k + ".cls_token"].expand(x.shape[0], -1, -1), x), 1)
    y = _ln(x, s, k + ".norm1", 1e-6)
    q, kk, v = F.linear(y, s[k + ".self_attn.in_proj_weight"], s[k + ".self_attn.in_proj_bias"]).chunk(3, -1)
    x = x + _lin(_mha(q, kk, v, h), s, k + ".self_attn.out_proj")
    x = x + _lin(F.gelu(_lin(_ln(x, s, k + ".norm2", 1e-6), s, k + ".linear1")), s, k + ".linear2")
    return x[:, 0]


def _ref_video(s, vis):
    """MotionFormer (divided_224_16x4, POS_EMBED separate) + spatial_attn_agg: vis (B, S, T, 3, H,
    W) -> (B, S, T/2, D)."""
    b, n_seg = vis.shape[:2]
    x = vis.reshape(b * n_seg, *vis.shape[2:]).permute(0, 2, 1, 3, 4)
    v = "vfeat_extractor."
    x = F.conv3d(x, s[v + "patch_embed_3d.proj.weight"], s[v + "patch_embed_3d.proj.bias"],
                 stride=(TUB, PATCH, PATCH)).flatten(2).transpose(1, 2)
    p = (IMG // PATCH) ** 2
    x = torch.cat((s[v + "cls_token"].expand(x.shape[0], -1, -1), x), 1)
    pos = s[v + "pos_embed"][:, 1:].repeat(1, TV, 1) + s[v + "temp_embed"].repeat_interleave(p, 1)
    x = x + torch.cat((s[v + "pos_embed"][:, :1], pos), 1)
    bk = v + "blocks.0."
    x = x + _divided(_ln(x, s, bk + "norm3", 1e-6), s, bk + "timeattn", "time", TV, p)
    x = x + _divided(_ln(x, s, bk + "norm1", 1e-6), s, bk + "attn", "space", TV, p)
    x = x + _lin(F.gelu(_lin(_ln(x, s, bk + "norm2", 1e-6), s, bk + "mlp.fc1")), s, bk + "mlp.fc2")
    x = _ln(x[:, 1:], s, v + "norm", 1e-6)
    frames = [_pool(x[:, f * p:(f + 1) * p], s, v + "spatial_attn_agg", VH) for f in range(TV)]
    return torch.stack(frames, 1).reshape(b, n_seg, TV, D)


def _ref_audio(s, mel):
    """AST (HF layout) + freq_attn_agg: mel (B, S, n_mels, spec_t) -> (B, S, time patches, D)."""
    b, n_seg = mel.shape[:2]
    x = mel.reshape(b * n_seg, N_MELS, SPEC_T).transpose(1, 2)  # extract_afeats: (BS, T, F)
    e = "afeat_extractor.ast.embeddings."
    x = F.conv2d(x.unsqueeze(1).transpose(2, 3), s[e + "patch_embeddings.projection.weight"],
                 s[e + "patch_embeddings.projection.bias"], stride=(STRIDE, STRIDE)).flatten(2).transpose(1, 2)
    n = x.shape[0]
    x = torch.cat((s[e + "cls_token"].expand(n, -1, -1), s[e + "distillation_token"].expand(n, -1, -1), x), 1)
    x = x + s[e + "position_embeddings"]
    ly = "afeat_extractor.ast.encoder.layer.0."
    y = _ln(x, s, ly + "layernorm_before", 1e-12)
    att = _mha(*(_lin(y, s, ly + "attention.attention." + m) for m in ("query", "key", "value")), AH)
    x = x + _lin(att, s, ly + "attention.output.dense")
    x = x + _lin(F.gelu(_lin(_ln(x, s, ly + "layernorm_after", 1e-12), s, ly + "intermediate.dense")), s,
                 ly + "output.dense")
    x = _ln(x, s, "afeat_extractor.ast.layernorm", 1e-12)[:, 2:]  # token fi * NT + ti
    times = [_pool(x[:, [fi * NT + ti for fi in range(NF)]], s, "afeat_extractor.freq_attn_agg", AH)
             for ti in range(NT)]
    return torch.stack(times, 1).reshape(b, n_seg, NT, D)


def _ref_logits(s, vis, mel):
    v = _lin(_ref_video(s, vis), s, "vproj").flatten(1, 2)
    a = _lin(_ref_audio(s, mel), s, "aproj").flatten(1, 2)
    t = "transformer."
    b = v.shape[0]
    x = torch.cat((s[t + "OFF_tok"].expand(b, -1, -1), _ln(v, s, t + "vis_in_lnorm"),
                   s[t + "MOD_tok"].expand(b, -1, -1), _ln(a, s, t + "aud_in_lnorm")), 1)
    x = x + s[t + "pos_emb_cfg.pos_emb"]
    k = t + "blocks.0."
    y = _ln(x, s, k + "ln1")
    x = x + _lin(_mha(_lin(y, s, k + "attn.query"), _lin(y, s, k + "attn.key"), _lin(y, s, k + "attn.value"), TH),
                 s, k + "attn.proj")
    x = x + _lin(F.gelu(_lin(_ln(x, s, k + "ln2"), s, k + "mlp.0")), s, k + "mlp.2")
    return _lin(_ln(x, s, t + "ln_f")[:, 0], s, t + "off_head")


@pytest.fixture(scope="module")
def sync_file(tmp_path_factory):
    state = _random_state()
    path = tmp_path_factory.mktemp("w") / "synchformer_state_dict.pth"
    torch.save(state, path)
    return state, path


def test_loader_matches_the_reference_forward(sync_file):
    state, path = sync_file
    m = load_released(EmbedderSpec("synchformer", path))
    c = m.config
    assert (c.dim, c.image, c.frames, c.segments, c.v_depth, c.a_depth, c.t_depth, c.a_grid) == \
        (D, IMG, TUB * TV, SEG, 1, 1, 1, (NF, NT))
    assert m.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() and m.sample_rate == 16000
    g = torch.Generator().manual_seed(1)
    vis = torch.randn(2, SEG, TUB * TV, 3, IMG, IMG, generator=g, dtype=torch.float64)
    mel = torch.randn(2, SEG, N_MELS, SPEC_T, generator=g, dtype=torch.float64)
    model = m.model.double()
    with torch.inference_mode():
        got = model(vis, mel)
    want = _ref_logits({k: v.double() for k, v in state.items()}, vis, mel)
    assert got.shape == (2, sf.NUM_OFFSETS)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-9)
    assert (got[0] - got[1]).abs().max() > 1e-3  # the inputs matter


def test_training_checkpoint_layout_loads_too(sync_file, tmp_path):
    state, path = sync_file
    wrapped = tmp_path / "24-01-04T16-39-21.pt"
    torch.save({"model": state, "epoch": 0}, wrapped)
    a = sf.load(path).model.state_dict()
    b = sf.load(wrapped).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("change, named", [
    ("drop", "missing tensor 'afeat_extractor.ast.encoder.layer.0.output.dense.bias'"),
    ("extra", "unexpected tensor 'transformer.sync_head.weight'"),
    ("shape", "tensor 'vproj.weight' has shape (24, 25), expected (24, 24)"),
    ("pos", "missing tensor 'transformer.pos_emb_cfg.pos_emb'"),
])
def test_bad_files_are_one_line_errors_naming_the_tensor(sync_file, tmp_path, change, named):
    state, _ = sync_file
    s = dict(state)
    if change == "drop":
        del s["afeat_extractor.ast.encoder.layer.0.output.dense.bias"]
    elif change == "extra":
        s["transformer.sync_head.weight"] = torch.zeros(2, D)
    elif change == "shape":
        s["vproj.weight"] = torch.zeros(D, D + 1)
    else:
        del s["transformer.pos_emb_cfg.pos_emb"]
    bad = tmp_path / "bad.pth"
    torch.save(s, bad)
    with pytest.raises(UserError) as e:
        load_released(EmbedderSpec("synchformer", bad))
    assert named in str(e.value) and "\n" not in str(e.value)


def test_offset_grid_and_desync_by_hand():
    grid = sf.offset_grid()
    assert len(grid) == 21 and grid[0] == np.float32(-2.0) and grid[10] == 0 and grid[20] == np.float32(2.0)
    assert grid[13] == np.float32(0.6)
    first = np.full((3, 21), -1.0)
    last = np.full((3, 21), -1.0)
    first[0, 0], last[0, 13] = 5.0, 5.0    # -2.0 s and +0.6 s: (2.0 + 0.6) / 2 = 1.3
    first[1, 10], last[1, 10] = 1.0, 1.0   # in sync both times
    first[2, 20], last[2, 7] = 2.0, 2.0    # +2.0 s and -0.6 s: 1.3
    np.testing.assert_allclose(sf.predicted_offsets(first), [-2.0, 0.0, 2.0], atol=1e-7)
    np.testing.assert_allclose(sf.desync(first, last), [1.3, 0.0, 1.3], atol=1e-7)


def test_log_mel_equals_an_independent_stft_and_htk_bank(sync_file):
    librosa = pytest.importorskip("librosa")
    _, path = sync_file
    m = sf.load(path)
    rng = np.random.default_rng(5)
    seg = (0.3 * rng.standard_normal(10240)).astype(np.float32)  # one released-size segment
    got = m.model.log_mel(torch.from_numpy(seg)[None]).numpy()[0]
    # numpy: reflect-pad n_fft/2, periodic Hann 400 centred in 1024, |rfft|^2, HTK mel 0-8 kHz
    x = np.pad(seg.astype(np.float64), 512, mode="reflect")
    win = np.zeros(1024)
    win[312:712] = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)
    frames = np.stack([x[i * 160:i * 160 + 1024] * win for i in range(65)])
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    bank = librosa.filters.mel(sr=16000, n_fft=1024, n_mels=128, fmin=0.0, fmax=8000.0, htk=True, norm=None)
    logmel = np.log(bank @ power.T + 1e-6)
    want = (np.pad(logmel, ((0, 0), (0, 1))) + 4.2677393) / (2 * 4.5689974)  # 65 frames, padded to 66
    assert got.shape == (128, 66)
    np.testing.assert_allclose(got, want, atol=2e-4)


def test_windows_are_the_first_and_last_segments(sync_file):
    _, path = sync_file
    m = sf.load(path)
    c = m.config
    assert (c.window_frames, c.seg_samples) == (6, 2560)
    # frame t is a flat image of value 20 t: its normalised value (20 t / 255 - 0.5) / 0.5
    frames = np.stack([np.full((IMG, IMG, 3), 20 * t, np.uint8) for t in range(10)])
    wav = np.zeros(6400, np.float32)  # 0.4 s: as long as the 10 frames
    v, a = sf.prepare(m, frames, wav)
    index = np.rint(((v[..., 0, 0, 0].numpy() * 0.5 + 0.5) * 255) / 20).astype(int)
    # 4 segments of 4 frames every 2: the first window is segments 0-1, the last 2-3
    assert index.tolist() == [[[0, 1, 2, 3], [2, 3, 4, 5]], [[4, 5, 6, 7], [6, 7, 8, 9]]]
    assert tuple(a.shape) == (2, SEG, N_MELS, SPEC_T)
    assert sf.prepare(m, frames, wav[:3000]) is None  # audio shorter than the window
    # a video up to 3 frames short of its audio gets its last frame repeated (av-benchmark's
    # VideoDataset); more than 3 short, the clip is as long as its video
    v, _ = sf.prepare(m, frames[:3], wav[:3840])  # 3 frames, 6 frames of audio
    index = np.rint(((v[..., 0, 0, 0].numpy() * 0.5 + 0.5) * 255) / 20).astype(int)
    assert index.tolist() == [[[0, 1, 2, 2], [2, 2, 2, 2]]] * 2
    assert sf.prepare(m, frames[:5], wav) is None  # 5 frames, 10 of audio: a 5-frame clip < one window


def test_predict_shares_segments_and_video_features(sync_file):
    _, path = sync_file
    m = sf.load(path)
    rng = np.random.default_rng(2)
    frames = rng.integers(0, 255, (8, IMG, IMG, 3)).astype(np.uint8)  # 3 segments: windows 0-1 and 1-2
    wavs = [(0.3 * rng.standard_normal(5120)).astype(np.float32) for _ in range(2)]
    cache: dict = {}
    for wav in wavs:
        with torch.inference_mode():
            want = m.model(*sf.prepare(m, frames, wav)).double().numpy()
        got = sf.predict(m, frames, wav, video_cache=cache, chunk=1)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    assert list(cache) == [3]  # the video's features computed once for both audios
    assert not np.allclose(sf.predict(m, frames, wavs[0]), sf.predict(m, frames, wavs[1]))


def _write_clip(root, name, seconds, seed):
    rng = np.random.default_rng(seed)
    n = int(round(seconds * 25))
    base = rng.integers(0, 255, (1, 32, 48, 3))
    frames = np.clip(base + np.arange(n)[:, None, None, None] * 9, 0, 255).astype(np.uint8)
    video = write_video(root / f"{name}.mp4", frames, 25.0)
    wavs = {}
    for system in ("real", "gen"):
        wav = (0.2 * rng.standard_normal(int(seconds * 16000))).astype(np.float32)
        wavs[system] = root / f"{name}_{system}.wav"
        soundfile.write(wavs[system], wav, 16000)
    return video, wavs


def test_evaluate_adds_offsets_and_desync_with_sha(sync_file, tmp_path, capsys):
    _, path = sync_file
    root = tmp_path / "clips"
    root.mkdir()
    csvs = []
    made = {vid: _write_clip(root, vid, secs, k) for k, (vid, secs) in enumerate((("a", 0.4), ("b", 0.4),
                                                                                 ("c", 0.2)))}
    for system in ("real", "gen"):
        recs = [ClipRecord(system, vid, "hit", wavs[system], wavs[system], source_video=str(video),
                           duration_s=0.4) for vid, (video, wavs) in made.items()]
        (root / system).mkdir()
        write_clips(root / system / "clips.csv", recs)
        csvs.append(str(root / system / "clips.csv"))
    out = tmp_path / "res"
    rc = main(["evaluate", "--clips", *csvs, "--embedding", f"synchformer={path}", "--bootstrap", "20",
               "--out", str(out)])
    assert rc == 0
    capsys.readouterr()
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    s = pd.read_csv(out / "objective.csv")
    rel = s[s.embedder == "synchformer"]
    assert set(rel.metric) == {"desync_synchformer"} and set(rel.weights_sha256) == {sha}
    assert set(rel.sample_rate_hz) == {16000}
    clips = pd.read_csv(out / "objective_clips_embedders.csv")
    assert set(clips.metric) == {"sync_offset_first_s_synchformer", "sync_offset_last_s_synchformer",
                                 "desync_synchformer"}
    per = clips.pivot_table(index=["system", "video_id"], columns="metric", values="value", dropna=False)
    # 'c' (0.2 s) is shorter than the 0.24 s window: no offset, no DeSync, and named in the notes
    assert per.loc[[("gen", "c"), ("real", "c")]].isna().all().all()
    grid = set(np.round(sf.offset_grid().astype(float), 6))
    ok = per.drop(index=[("gen", "c"), ("real", "c")])
    for _, r in ok.iterrows():
        assert round(r["sync_offset_first_s_synchformer"], 6) in grid
        assert r["desync_synchformer"] == pytest.approx(
            (abs(r["sync_offset_first_s_synchformer"]) + abs(r["sync_offset_last_s_synchformer"])) / 2)
    # the same clip through the model directly gives the same offsets
    m = sf.load(path)
    from regnet.data.audio import load_audio
    from regnet.metrics.evaluate import _sync_frames

    frames = _sync_frames(made["a"][0], 0.4, IMG)
    assert frames.shape == (10, IMG, IMG, 3)
    logits = m.predict(frames, load_audio(made["a"][1]["gen"], 16000, 0.4))
    assert ok.loc[("gen", "a"), "sync_offset_first_s_synchformer"] == pytest.approx(sf.predicted_offsets(logits)[0])
    row = rel.set_index("system").loc["gen"]
    # Both files keep 6 significant digits (%.6g): the mean of rounded offsets and the rounded mean may
    # differ in the last digit.
    assert row["n"] == 2 and row["mean"] == pytest.approx(ok.loc["gen"]["desync_synchformer"].mean(), rel=1e-5,
                                                          abs=2e-6)
    assert row.ci95_low <= row["mean"] <= row.ci95_high
    md = (out / "objective.md").read_text()
    assert "DeSync (synchformer) ↓" in md and sha in md and "gen/c" in md and "real/c" in md
    # the human-vs-machine report reads DeSync (lower is better) from objective_clips.csv; the signed
    # offsets are no better-or-worse score and stay in objective_clips_embedders.csv
    from mturk.report.objective import _sign, load_objective

    wide, metrics = load_objective(out / "objective_clips.csv")
    assert "desync_synchformer" in metrics and not any(m.startswith("sync_offset_") for m in metrics)
    assert wide.loc[("gen", "a"), "desync_synchformer"] == pytest.approx(ok.loc[("gen", "a"), "desync_synchformer"])
    assert _sign("desync_synchformer") == -1.0


def test_spec_names_synchformer():
    assert parse_spec("synchformer=/w/synchformer_state_dict.pth").name == "synchformer"
