"""LAION-CLAP loader without the released weights. The laion-clap package cannot be installed here
(it pins numpy<2 and builds its text branch with ``RobertaModel.from_pretrained``, a download), so
the reference's audio forward pass is written out below as plain functions over the state dict,
from its ``clap_module/htsat.py`` (HTSAT_Swin_Transformer with create_htsat_model's layer list,
shrunk: embed 8, heads 1-2-2-4) and ``clap_module/model.py`` (audio_projection,
get_audio_embedding) and ``hook.py`` / ``training/data.py`` (int16 round trip, repeatpad), with
random weights saved in the released checkpoint's layout (``{"state_dict": {"module.…"}}``). The
text side is transformers' RobertaModel itself (the reference's text branch) with a tiny config and
a hand-made byte-level BPE vocabulary."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import librosa
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from regnet.cli import main
from regnet.data.audio import load_audio
from regnet.data.mel import fit_length
from regnet.errors import UserError
from regnet.metrics.embedders import EmbedderSpec, load_released
from regnet.metrics.embedders import clap

from tests.helpers.bench import bench_clips

torch.set_num_threads(1)

EMBED, DEPTHS, HEADS, WINDOW, PATCH, MELS, CLASSES, JOINT = 8, (2, 2, 2, 2), (1, 2, 2, 4), 8, 4, 64, 5, 16
TEXT_WIDTH, TEXT_LAYERS, TEXT_POSITIONS = 64, 2, 80
# byte-level BPE words ("Ġ" = a leading space) that make up the prompts of the test
WORDS = ["the", "Ġsound", "Ġof", "Ġhit", "Ġdog"]


def _rel_index(w):
    coords = torch.stack(torch.meshgrid([torch.arange(w), torch.arange(w)], indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0).contiguous()
    rel[:, :, 0] += w - 1
    rel[:, :, 1] += w - 1
    rel[:, :, 0] *= 2 * w - 1
    return rel.sum(-1)


def _partition(x, w):
    b, h, wd, c = x.shape
    return x.view(b, h // w, w, wd // w, w, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, w, w, c)


def _shift_mask(res, w, s):
    img = torch.zeros((1, res, res, 1))
    cnt = 0
    for hs in (slice(0, -w), slice(-w, -s), slice(-s, None)):
        for ws in (slice(0, -w), slice(-w, -s), slice(-s, None)):
            img[:, hs, ws, :] = cnt
            cnt += 1
    m = _partition(img, w).view(-1, w * w)
    m = m.unsqueeze(1) - m.unsqueeze(2)
    return m.masked_fill(m != 0, -100.0).masked_fill(m == 0, 0.0)


def _blocks():
    """(layer, block, dim, resolution, heads, window, shift) of create_htsat_model's layer list."""
    grid = 256 // PATCH
    for i, depth in enumerate(DEPTHS):
        res = grid // 2 ** i
        for j in range(depth):
            w, s = WINDOW, (0 if j % 2 == 0 else WINDOW // 2)
            if res <= w:  # SwinTransformerBlock: the window covers the map, no shift
                w, s = res, 0
            yield i, j, EMBED * 2 ** i, res, HEADS[i], w, s


def reference_state(seed=0) -> dict:
    """Random tensors in the released file's key layout (without ``module.``), text side included."""
    from torchlibrosa.stft import LogmelFilterBank, Spectrogram
    from transformers import RobertaConfig, RobertaModel

    g = torch.Generator().manual_seed(seed)

    def rnd(*shape, scale=0.2):
        return torch.randn(*shape, generator=g) * scale

    def linear(prefix, cin, cout, bias=True):
        out = {f"{prefix}.weight": rnd(cout, cin, scale=1 / math.sqrt(cin))}
        if bias:
            out[f"{prefix}.bias"] = rnd(cout, scale=0.05)
        return out

    def norm(prefix, d):
        return {f"{prefix}.weight": 1 + rnd(d, scale=0.1), f"{prefix}.bias": rnd(d, scale=0.05)}

    a = "audio_branch"
    s = {f"{a}.spectrogram_extractor.{k}": v for k, v in Spectrogram(
        n_fft=1024, hop_length=480, win_length=1024, window="hann", center=True, pad_mode="reflect",
        freeze_parameters=True).state_dict().items()}
    s.update({f"{a}.logmel_extractor.{k}": v for k, v in LogmelFilterBank(
        sr=48000, n_fft=1024, n_mels=MELS, fmin=50, fmax=14000, ref=1.0, amin=1e-10, top_db=None,
        freeze_parameters=True).state_dict().items()})
    s.update({f"{a}.bn0.weight": 1 + rnd(MELS, scale=0.1), f"{a}.bn0.bias": rnd(MELS, scale=0.1),
              f"{a}.bn0.running_mean": rnd(MELS, scale=5.0) - 40.0,
              f"{a}.bn0.running_var": 20.0 + rnd(MELS).abs() * 10, f"{a}.bn0.num_batches_tracked": torch.tensor(7)})
    s[f"{a}.patch_embed.proj.weight"] = rnd(EMBED, 1, PATCH, PATCH, scale=0.5)
    s[f"{a}.patch_embed.proj.bias"] = rnd(EMBED, scale=0.05)
    s.update(norm(f"{a}.patch_embed.norm", EMBED))
    for i, j, d, res, h, w, sh in _blocks():
        p = f"{a}.layers.{i}.blocks.{j}"
        s.update(norm(f"{p}.norm1", d))
        s[f"{p}.attn.relative_position_bias_table"] = rnd((2 * w - 1) ** 2, h, scale=0.5)
        s[f"{p}.attn.relative_position_index"] = _rel_index(w)
        s.update(linear(f"{p}.attn.qkv", d, 3 * d))
        s.update(linear(f"{p}.attn.proj", d, d))
        s.update(norm(f"{p}.norm2", d))
        s.update(linear(f"{p}.mlp.fc1", d, 4 * d))
        s.update(linear(f"{p}.mlp.fc2", 4 * d, d))
        if sh:
            s[f"{p}.attn_mask"] = _shift_mask(res, w, sh)
        if j == DEPTHS[i] - 1 and i < len(DEPTHS) - 1:
            s.update(norm(f"{a}.layers.{i}.downsample.norm", 4 * d))
            s.update(linear(f"{a}.layers.{i}.downsample.reduction", 4 * d, 2 * d, bias=False))
    feat = EMBED * 2 ** (len(DEPTHS) - 1)
    s.update(norm(f"{a}.norm", feat))
    sf = 256 // 2 ** (len(DEPTHS) - 1) // PATCH // (256 // MELS)
    s[f"{a}.tscam_conv.weight"] = rnd(CLASSES, feat, sf, 3)
    s[f"{a}.tscam_conv.bias"] = rnd(CLASSES)
    s.update(linear(f"{a}.head", CLASSES, CLASSES))
    for side, width in (("audio", feat), ("text", TEXT_WIDTH)):
        s.update(linear(f"{side}_projection.0", width, JOINT))
        s.update(linear(f"{side}_projection.2", JOINT, JOINT))
        s.update(linear(f"{side}_transform.sequential.0", JOINT, JOINT))
        s.update(linear(f"{side}_transform.sequential.3", JOINT, JOINT))
    s["logit_scale_a"] = torch.tensor(math.log(1 / 0.07))
    s["logit_scale_t"] = torch.tensor(math.log(1 / 0.07))
    torch.manual_seed(seed)
    roberta = RobertaModel(RobertaConfig(
        vocab_size=50, hidden_size=TEXT_WIDTH, num_hidden_layers=TEXT_LAYERS, num_attention_heads=1,
        intermediate_size=96, max_position_embeddings=TEXT_POSITIONS, type_vocab_size=1, pad_token_id=1,
        layer_norm_eps=1e-5))
    # transformers' init (std 0.02) makes the pooled output nearly the same for every prompt
    with torch.no_grad():
        for name, w in roberta.named_parameters():
            if "LayerNorm" not in name:
                w.copy_(rnd(*w.shape, scale=0.3 if w.ndim == 2 else 0.05))
    s.update({f"text_branch.{k}": v for k, v in roberta.state_dict().items()})
    # the transformers the file was saved with kept this buffer in the state dict
    s["text_branch.embeddings.position_ids"] = torch.arange(TEXT_POSITIONS)[None]
    return s


def _ln(x, s, p):
    return F.layer_norm(x, x.shape[-1:], s[f"{p}.weight"], s[f"{p}.bias"], 1e-5)


def _lin(x, s, p):
    return F.linear(x, s[f"{p}.weight"], s.get(f"{p}.bias"))


def reference_logmel(s, wav):
    """torchlibrosa Spectrogram + LogmelFilterBank with the file's kernels: [B, 1, T, mels]."""
    a = "audio_branch"
    x = F.pad(wav[:, None, :], (512, 512), mode="reflect")
    re = F.conv1d(x, s[f"{a}.spectrogram_extractor.stft.conv_real.weight"], stride=480)
    im = F.conv1d(x, s[f"{a}.spectrogram_extractor.stft.conv_imag.weight"], stride=480)
    power = (re ** 2 + im ** 2).transpose(1, 2)[:, None]  # [B, 1, T, F]
    mel = power @ s[f"{a}.logmel_extractor.melW"]
    return 10.0 * torch.log10(torch.clamp(mel, min=1e-10))


def reference_audio_embedding(s, wav):
    """HTSAT forward (non-fusion, eval) + audio_projection + normalize, written from htsat.py."""
    a = "audio_branch"
    x = reference_logmel(s, wav).transpose(1, 3)
    x = F.batch_norm(x, s[f"{a}.bn0.running_mean"], s[f"{a}.bn0.running_var"], s[f"{a}.bn0.weight"],
                     s[f"{a}.bn0.bias"], False, 0.0, 1e-5).transpose(1, 3)
    ratio = 256 // MELS
    x = F.interpolate(x, (256 * ratio, MELS), mode="bicubic", align_corners=True)  # reshape_wav2img
    x = x.permute(0, 1, 3, 2).reshape(x.shape[0], 1, MELS, ratio, 256).permute(0, 1, 3, 2, 4)
    x = x.reshape(x.shape[0], 1, MELS * ratio, 256)
    x = F.conv2d(x, s[f"{a}.patch_embed.proj.weight"], s[f"{a}.patch_embed.proj.bias"], stride=PATCH)
    x = _ln(x.flatten(2).transpose(1, 2), s, f"{a}.patch_embed.norm")
    for i, j, d, res, h, w, sh in _blocks():
        p = f"{a}.layers.{i}.blocks.{j}"
        b = x.shape[0]
        y = _ln(x, s, f"{p}.norm1").view(b, res, res, d)
        if sh:
            y = torch.roll(y, (-sh, -sh), (1, 2))
        win = _partition(y, w).view(-1, w * w, d)
        qkv = _lin(win, s, f"{p}.attn.qkv").reshape(win.shape[0], w * w, 3, h, d // h).permute(2, 0, 3, 1, 4)
        att = (qkv[0] * (d // h) ** -0.5) @ qkv[1].transpose(-2, -1)
        bias = s[f"{p}.attn.relative_position_bias_table"][_rel_index(w).view(-1)].view(w * w, w * w, -1)
        att = att + bias.permute(2, 0, 1)[None]
        if sh:
            m = _shift_mask(res, w, sh)
            att = (att.view(-1, m.shape[0], h, w * w, w * w) + m[None, :, None]).view(-1, h, w * w, w * w)
        out = _lin((att.softmax(-1) @ qkv[2]).transpose(1, 2).reshape(-1, w * w, d), s, f"{p}.attn.proj")
        out = out.view(b, res // w, res // w, w, w, d).permute(0, 1, 3, 2, 4, 5).reshape(b, res, res, d)
        if sh:
            out = torch.roll(out, (sh, sh), (1, 2))
        x = x + out.reshape(b, res * res, d)
        x = x + _lin(F.gelu(_lin(_ln(x, s, f"{p}.norm2"), s, f"{p}.mlp.fc1")), s, f"{p}.mlp.fc2")
        if j == DEPTHS[i] - 1 and i < len(DEPTHS) - 1:
            g = x.view(b, res, res, d)
            g = torch.cat([g[:, 0::2, 0::2], g[:, 1::2, 0::2], g[:, 0::2, 1::2], g[:, 1::2, 1::2]], -1)
            x = _lin(_ln(g.view(b, -1, 4 * d), s, f"{a}.layers.{i}.downsample.norm"), s,
                     f"{a}.layers.{i}.downsample.reduction")
    x = _ln(x, s, f"{a}.norm")
    b, n, c = x.shape
    side = int(math.isqrt(n))
    x = x.permute(0, 2, 1).reshape(b, c, side, side)  # forward_features: regroup, then avgpool
    x = x.reshape(b, c, ratio, side // ratio, side).permute(0, 1, 3, 2, 4).reshape(b, c, side // ratio, -1)
    emb = x.flatten(2).mean(-1)
    proj = _lin(F.relu(_lin(emb, s, "audio_projection.0")), s, "audio_projection.2")
    return F.normalize(proj, dim=-1)


def reference_input(wav, max_len=480000):
    """hook.get_audio_embedding_from_data: int16 round trip; get_audio_features(repeatpad)."""
    q = (np.clip(wav, -1.0, 1.0) * 32767.0).astype(np.int16)
    x = torch.from_numpy((q / 32767.0).astype(np.float32))
    if len(x) > max_len:
        return x[:max_len]  # the reference: a random start; the loader takes 0
    x = x.repeat(int(max_len / len(x)))
    return F.pad(x, (0, max_len - len(x)))


def reference_text_embedding(s, ids):
    from transformers import RobertaConfig, RobertaModel

    roberta = RobertaModel(RobertaConfig(
        vocab_size=50, hidden_size=TEXT_WIDTH, num_hidden_layers=TEXT_LAYERS, num_attention_heads=1,
        intermediate_size=96, max_position_embeddings=TEXT_POSITIONS, type_vocab_size=1, pad_token_id=1,
        layer_norm_eps=1e-5))
    roberta.load_state_dict({k[len("text_branch."):]: v for k, v in s.items()
                             if k.startswith("text_branch.") and not k.endswith("position_ids")}, strict=True)
    roberta.eval()
    ids = torch.tensor([ids])
    with torch.inference_mode():
        pooled = roberta(input_ids=ids, attention_mask=torch.ones_like(ids))["pooler_output"]
    return F.normalize(_lin(F.relu(_lin(pooled, s, "text_projection.0")), s, "text_projection.2"), dim=-1)


def _write_tokenizer(folder: Path) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for c in sorted({c for w in WORDS for c in w}):
        vocab[c] = len(vocab)
    merges = []
    for w in WORDS:
        cur = w[0]
        for c in w[1:]:
            merges.append(f"{cur} {c}")
            cur += c
            vocab.setdefault(cur, len(vocab))
    vocab["<mask>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(dict.fromkeys(merges)) + "\n")
    return vocab


@pytest.fixture(scope="module")
def clap_file(tmp_path_factory):
    state = reference_state()
    path = tmp_path_factory.mktemp("clap") / "tiny-630k-audioset-best.pt"
    torch.save({"epoch": 45, "state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    tok = tmp_path_factory.mktemp("roberta")
    return state, path, tok, _write_tokenizer(tok)


def _audio(n, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 48000
    return (0.3 * np.sin(2 * np.pi * (300 + 200 * seed) * t) * (1 + np.sin(2 * np.pi * 3 * t))
            + 0.05 * rng.standard_normal(n)).astype(np.float32)


def test_clap_audio_embedding_matches_the_reference(clap_file):
    state, path, _, _ = clap_file
    emb = load_released(EmbedderSpec("clap", path))
    assert emb.sample_rate == 48000 and not emb.has_logits and emb.text_fn is None
    assert emb.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert emb.model.config.depths == DEPTHS and emb.model.config.num_heads == HEADS
    # a 2 s clip (repeat-padded), one of exactly 10 s and a 12 s one (cut to its first 10 s)
    wavs = [_audio(96000, 0), _audio(480000, 1), _audio(576000, 2)]
    got = np.concatenate([o.embeddings for o in emb.embed(wavs)])
    with torch.inference_mode():
        want = reference_audio_embedding(state, torch.stack([reference_input(w) for w in wavs])).double().numpy()
    assert got.shape == (3, JOINT)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(got, want, atol=1e-5)
    # the embedding depends on the sound (a constant model would pass the comparison above)
    assert np.abs(got[0] - got[1]).max() > 1e-2
    # repeatpad: a 2 s clip is its own five-fold repetition
    np.testing.assert_allclose(clap.audio_input(wavs[0]), np.tile(reference_input(wavs[0])[:96000].numpy(), 5))
    # a file without the computed buffers (shifted-window masks, relative position indices) gets
    # the loader's own, which must equal the reference's
    bare = {k: v for k, v in state.items() if not k.endswith(("attn_mask", "relative_position_index"))}
    assert len(bare) < len(state)
    torch.save({"state_dict": bare}, path.with_name("bare.pt"))
    again = clap.load(path.with_name("bare.pt")).embed(wavs)
    np.testing.assert_allclose(np.concatenate([o.embeddings for o in again]), want, atol=1e-5)


def test_clap_mel_front_end_equals_librosa(clap_file):
    _, path, _, _ = clap_file
    emb = load_released(EmbedderSpec("clap", path))
    wav = _audio(48000, 3).astype(np.float64)
    power = np.abs(librosa.stft(wav, n_fft=1024, hop_length=480, window="hann", center=True,
                                pad_mode="reflect")) ** 2
    mel = librosa.filters.mel(sr=48000, n_fft=1024, n_mels=64, fmin=50, fmax=14000) @ power
    want = 10 * np.log10(np.maximum(mel, 1e-10)).T
    with torch.inference_mode():
        got = emb.model.audio_branch.logmel(torch.from_numpy(wav.astype(np.float32))[None])[0, 0].double().numpy()
    assert got.shape == want.shape == (101, 64)
    np.testing.assert_allclose(got, want, atol=2e-3)


def test_clap_bad_files_are_one_line_errors_naming_the_tensor(clap_file, tmp_path):
    state, _, tok, _ = clap_file
    cases = [
        (lambda s: s.pop("audio_projection.2.bias"), "missing tensor 'audio_projection.2.bias'"),
        (lambda s: s.__setitem__("audio_branch.fusion_model.weight", torch.zeros(2)),
         "unexpected tensor 'audio_branch.fusion_model.weight'"),
        (lambda s: s.__setitem__("audio_branch.layers.1.blocks.0.mlp.fc2.bias", torch.zeros(3)),
         "tensor 'audio_branch.layers.1.blocks.0.mlp.fc2.bias' has shape (3,), expected (16,)"),
        (lambda s: s.pop("audio_branch.patch_embed.proj.weight"), "missing tensor 'audio_branch.patch_embed.proj.weight'"),
        (lambda s: s.pop("text_projection.0.weight"), "missing tensor 'text_projection.0.weight'"),
        (lambda s: s.__setitem__("text_branch.encoder.layer.1.output.dense.bias", torch.zeros(4)),
         "tensor 'text_branch.encoder.layer.1.output.dense.bias' has shape (4,)"),
    ]
    for k, (change, expect) in enumerate(cases):
        s = dict(state)
        change(s)
        path = tmp_path / f"bad{k}.pt"
        torch.save({"state_dict": {f"module.{key}": v for key, v in s.items()}}, path)
        with pytest.raises(UserError) as e:
            clap.load(path, tokenizer_dir=tok)
        assert expect in str(e.value) and "\n" not in str(e.value), (expect, str(e.value))
    # the text side is only checked when it is asked for
    s = {k: v for k, v in state.items() if not k.startswith("text_")}
    path = tmp_path / "audio_only.pt"
    torch.save({"state_dict": s}, path)  # (and without the module. prefix)
    assert clap.load(path).text_fn is None
    with pytest.raises(UserError, match="missing tensor 'text_branch.embeddings.word_embeddings.weight'"):
        clap.load(path, tokenizer_dir=tok)
    with pytest.raises(UserError, match="no merges.txt"):
        (tmp_path / "tok").mkdir()
        (tmp_path / "tok" / "vocab.json").write_text("{}")
        clap.load(path, tokenizer_dir=tmp_path / "tok")


def test_clap_text_embedding_matches_the_reference(clap_file):
    state, path, tok, vocab = clap_file
    emb = load_released(EmbedderSpec("clap", path), tokenizer_dir=tok)
    got = emb.embed_text(["the sound of hit", "the sound of dog"])
    # the token ids written out: <s> the Ġsound Ġof Ġhit </s>
    for k, word in enumerate(("Ġhit", "Ġdog")):
        ids = [0, vocab["the"], vocab["Ġsound"], vocab["Ġof"], vocab[word], 2]
        np.testing.assert_allclose(got[k], reference_text_embedding(state, ids)[0].double().numpy(), atol=1e-5)
    assert np.abs(got[0] - got[1]).max() > 1e-2


def test_evaluate_writes_fd_clap_and_clap_score(bench, clap_file, tmp_path, capsys):
    state, path, tok, vocab = clap_file
    out = tmp_path / "res"
    rc = main(["evaluate", "--clips", *map(str, bench_clips(bench, "good", "late")), "--manifest",
               str(bench / "manifest.csv"), "--reference", "clean", "--embedding", f"clap={path}",
               "--clap-tokenizer", str(tok), "--bootstrap", "20", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    s = pd.read_csv(out / "objective.csv")
    rel = s[s.embedder.notna()]
    assert set(rel.metric) == {"fd_clap", "clap_score_clap"}
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert set(rel.weights_sha256) == {sha} and set(rel.sample_rate_hz) == {48000}
    v = rel.set_index(["system", "metric"])
    # 'good' is the clean track itself: zero distance; 'late' is not
    assert v.loc[("good", "fd_clap"), "mean"] == pytest.approx(0.0, abs=1e-6)
    assert v.loc[("late", "fd_clap"), "mean"] > 1e-6
    # the per-clip CLAP score is the cosine of the clip's reference embedding with the prompt's
    clips = pd.read_csv(out / "objective_clips_embedders.csv")
    score = clips[clips.metric == "clap_score_clap"]
    assert len(score) == 6 and set(score.weights_sha256) == {sha}
    text = reference_text_embedding(state, [0, vocab["the"], vocab["Ġsound"], vocab["Ġof"], vocab["Ġhit"], 2])[0]
    for _, r in score.iterrows():
        wav = fit_length(load_audio(bench / r.system / f"{r.video_id}.wav", 48000, 2.0), 96000)
        with torch.inference_mode():
            a = reference_audio_embedding(state, reference_input(wav)[None])[0]
        assert r.value == pytest.approx(float(a @ text), abs=1e-5)
    late = v.loc[("late", "clap_score_clap")]
    assert late["mean"] == pytest.approx(score[score.system == "late"].value.mean(), abs=1e-6)
    assert late.ci_method == "bootstrap" and late.ci95_low <= late["mean"] <= late.ci95_high
    md = (out / "objective.md").read_text()
    assert "CLAP score (clap) ↑" in md and "the sound of {class}" in md and sha in md
    # without the tokenizer: FD only, and a note saying why
    rc = main(["evaluate", "--clips", str(bench_clips(bench, "good")[0]), "--manifest", str(bench / "manifest.csv"),
               "--reference", "clean", "--embedding", f"clap={path}", "--bootstrap", "0", "--out", str(tmp_path / "r2")])
    assert rc == 0
    s2 = pd.read_csv(tmp_path / "r2" / "objective.csv")
    assert set(s2[s2.embedder.notna()].metric) == {"fd_clap"}
    assert "--clap-tokenizer" in (tmp_path / "r2" / "objective.md").read_text()


def test_clap_options_errors(bench, clap_file, tmp_path, capsys):
    _, path, tok, _ = clap_file
    base = ["evaluate", "--clips", str(bench_clips(bench, "good")[0]), "--manifest", str(bench / "manifest.csv"),
            "--out", str(tmp_path / "r")]
    for extra, expect in ((["--clap-tokenizer", str(tok)], "--clap-tokenizer: give --embedding clap=PATH too"),
                          (["--embedding", f"clap={path}", "--clap-prompt", "a {cls} sound"],
                           "--clap-prompt: must contain {class}")):
        assert main(base + extra) == 2
        assert expect in capsys.readouterr().err
