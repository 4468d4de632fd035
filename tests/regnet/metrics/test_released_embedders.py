"""Released-embedder loaders without the released weights: the reference architecture with random
weights, saved in the released file's layout, loads through the project's loader and gives the
same embeddings; a missing, unexpected or wrong-shaped tensor is a one-line error naming it; and
`evaluate --embedding NAME=PATH` writes FD / KL / IS with the file's sha256 and sample rate.

PANNs' reference is the `panns_inference` package's own ``Cnn14`` (its ``models.py``; the package's
``__init__`` fetches a label list at import, so the module is loaded without it). VGGish's is
torchvggish's ``VGG`` written out below layer by layer (the package needs resampy/numba).
"""

from __future__ import annotations

import hashlib
import importlib
import math
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn as nn

from regnet.cli import main
from regnet.errors import UserError
from regnet.metrics.embedders import EmbedderSpec, check_state_dict, load_released, parse_spec
from regnet.metrics.embedders import panns, vggish

from tests.helpers.bench import bench_clips

torch.set_num_threads(1)


def _reference_cnn14_class():
    if "panns_inference" not in sys.modules:
        import importlib.metadata as md

        root = Path(str(md.distribution("panns-inference").locate_file("panns_inference")))
        pkg = types.ModuleType("panns_inference")
        pkg.__path__ = [str(root)]
        sys.modules["panns_inference"] = pkg  # skip its __init__ (it downloads a label list at import)
    return importlib.import_module("panns_inference.models").Cnn14


@pytest.fixture(scope="module")
def cnn14_file(tmp_path_factory):
    torch.manual_seed(7)
    ref = _reference_cnn14_class()(sample_rate=16000, window_size=512, hop_size=160, mel_bins=64,
                                   fmin=50, fmax=8000, classes_num=527)
    # random BatchNorm statistics too, so the test sees them used
    for m in ref.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    ref.eval()
    path = tmp_path_factory.mktemp("w") / "Cnn14_16k_mAP=0.438.pth"
    torch.save({"model": ref.state_dict(), "iteration": 0}, path)  # the released files' layout
    return ref, path


def _audio(sr, seconds, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    return (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.normal(size=t.size)).astype(np.float32)


def test_panns_loader_matches_the_reference_cnn14(cnn14_file):
    ref, path = cnn14_file
    emb = load_released(EmbedderSpec("panns-cnn14", path))
    assert emb.sample_rate == 16000 and emb.has_logits
    assert emb.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    wavs = [_audio(16000, 1.0, 0), _audio(16000, 1.0, 1)]
    out = emb.embed(wavs)
    with torch.no_grad():
        want = ref(torch.from_numpy(np.stack(wavs)))
    for k in range(2):
        assert out[k].embeddings.shape == (1, 2048)
        np.testing.assert_allclose(out[k].embeddings[0], want["embedding"][k].numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(1 / (1 + np.exp(-out[k].logits)), want["clipwise_output"][k].numpy(),
                                   rtol=1e-5, atol=1e-6)
    # a clip under 32 frames is zero-padded to 32, not an error
    short = emb.embed([_audio(16000, 0.1, 2)])[0]
    assert short.embeddings.shape == (1, 2048) and np.isfinite(short.logits).all()


def test_panns_variant_is_read_from_the_stft_kernel(cnn14_file):
    _, path = cnn14_file
    state = {"spectrogram_extractor.stft.conv_real.weight": torch.zeros(513, 1, 1024),
             "logmel_extractor.melW": torch.zeros(513, 64), "fc_audioset.weight": torch.zeros(527, 2048)}
    cfg = panns.config_from_state(path, state)
    assert (cfg.sample_rate, cfg.window_size, cfg.hop_size) == (32000, 1024, 320)
    state["spectrogram_extractor.stft.conv_real.weight"] = torch.zeros(301, 1, 600)
    with pytest.raises(UserError, match="STFT size 600"):
        panns.config_from_state(path, state)


def test_panns_bad_files_are_one_line_errors_naming_the_tensor(bench, cnn14_file, tmp_path, capsys):
    ref, path = cnn14_file
    model = panns.build(panns.config_from_state(path, ref.state_dict()))
    good = ref.state_dict()
    for change, expect in (
            (lambda s: s.pop("fc1.bias"), "missing tensor 'fc1.bias'"),
            (lambda s: s.__setitem__("head.weight", torch.zeros(2)), "unexpected tensor 'head.weight'"),
            (lambda s: s.__setitem__("conv_block3.bn1.running_var", torch.zeros(5)),
             "tensor 'conv_block3.bn1.running_var' has shape (5,), expected (256,)")):
        state = dict(good)
        change(state)
        with pytest.raises(UserError) as e:
            check_state_dict(path, model, state, ("num_batches_tracked",))
        assert expect in str(e.value) and "\n" not in str(e.value)
    # num_batches_tracked (unused in inference) may be absent, as in checkpoints from old torch
    trimmed = {k: v for k, v in good.items() if not k.endswith("num_batches_tracked")}
    model.load_state_dict(check_state_dict(path, model, trimmed, ("num_batches_tracked",)), strict=True)
    # through the CLI: one line on stderr, exit 2
    broken = tmp_path / "broken.pth"
    state = dict(good)
    state.pop("fc_audioset.bias")
    torch.save({"model": state}, broken)
    rc = main(["evaluate", "--clips", str(bench_clips(bench, "good")[0]), "--manifest", str(bench / "manifest.csv"),
               "--embedding", f"panns-cnn14={broken}", "--out", str(tmp_path / "r")])
    errors = [ln for ln in capsys.readouterr().err.splitlines() if "error" in ln.lower()]
    assert rc == 2 and len(errors) == 1 and "broken.pth: missing tensor 'fc_audioset.bias'" in errors[0]


class TorchVGGishReference(nn.Module):
    """torchvggish's VGG (make_layers + embeddings + forward), transcribed."""

    def __init__(self):
        super().__init__()
        layers, cin = [], 1
        for v in [64, "M", 128, "M", 256, 256, "M", 512, 512, "M"]:
            if v == "M":
                layers += [nn.MaxPool2d(kernel_size=2, stride=2)]
            else:
                layers += [nn.Conv2d(cin, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                cin = v
        self.features = nn.Sequential(*layers)
        self.embeddings = nn.Sequential(nn.Linear(512 * 4 * 6, 4096), nn.ReLU(True), nn.Linear(4096, 4096),
                                        nn.ReLU(True), nn.Linear(4096, 128), nn.ReLU(True))

    def forward(self, x):
        x = self.features(x)
        x = torch.transpose(x, 1, 3)
        x = torch.transpose(x, 1, 2)
        x = x.contiguous().view(x.size(0), -1)
        return self.embeddings(x)


def _reference_examples(wav):
    """vggish_input.waveform_to_examples at 16 kHz (mel_features), transcribed loop by loop."""
    win, hop, n_fft = 400, 160, 512
    window = 0.5 - 0.5 * np.cos(2 * np.pi / win * np.arange(win))
    n = 1 + (len(wav) - win) // hop
    spec = np.array([np.abs(np.fft.rfft(wav[i * hop:i * hop + win] * window, n_fft)) for i in range(n)])
    mel = lambda f: 1127.0 * np.log(1.0 + f / 700.0)  # noqa: E731
    bins = mel(np.linspace(0, 8000, n_fft // 2 + 1))
    edges = np.linspace(mel(125.0), mel(7500.0), 66)
    w = np.zeros((n_fft // 2 + 1, 64))
    for b in range(64):
        for j in range(1, n_fft // 2 + 1):
            lo = (bins[j] - edges[b]) / (edges[b + 1] - edges[b])
            hi = (edges[b + 2] - bins[j]) / (edges[b + 2] - edges[b + 1])
            w[j, b] = max(0.0, min(lo, hi))
    log_mel = np.log(spec @ w + 0.01)
    k = 1 + (len(log_mel) - 96) // 96
    return np.stack([log_mel[i * 96:(i + 1) * 96] for i in range(k)])


@pytest.fixture(scope="module")
def vggish_file(tmp_path_factory):
    torch.manual_seed(3)
    ref = TorchVGGishReference()
    with torch.no_grad():  # scale so the random ReLU stack stays away from all-zero outputs
        for m in ref.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.bias.uniform_(0.0, 0.05)
    ref.eval()
    path = tmp_path_factory.mktemp("w") / "vggish-10086976.pth"
    torch.save(ref.state_dict(), path)
    return ref, path


def test_vggish_loader_matches_the_reference(vggish_file, tmp_path, caplog):
    ref, path = vggish_file
    emb = load_released(EmbedderSpec("vggish", path))
    assert emb.sample_rate == 16000 and not emb.has_logits
    # torch.hub names the release by its sha256's first 8 hex digits: a random file is flagged
    assert "not torchvggish's released file" in caplog.text
    wav = _audio(16000, 2.5, 4).astype(np.float64)
    ex = _reference_examples(wav)
    assert ex.shape == (2, 96, 64)
    np.testing.assert_allclose(vggish.examples(wav), ex, rtol=1e-9, atol=1e-9)
    out = emb.embed([wav, _audio(16000, 0.5, 5)])
    with torch.no_grad():
        want = ref(torch.from_numpy(ex.astype(np.float32))[:, None]).numpy()
    assert out[0].embeddings.shape == (2, 128) and np.abs(want).sum() > 0
    np.testing.assert_allclose(out[0].embeddings, want, rtol=1e-5, atol=1e-6)
    assert out[1].embeddings.shape == (0, 128)  # under 0.975 s: no complete frame, as the reference
    # PCA postprocessing (torchvggish's Postprocessor) with a PCA file in the released layout
    rng = np.random.default_rng(0)
    pca = {"pca_eigen_vectors": rng.normal(size=(128, 128)) * 0.1, "pca_means": rng.normal(size=128) * 0.01}
    torch.save(pca, tmp_path / "vggish_pca_params-970ea276.pth")
    with_pca = vggish.load(path, pca_path=tmp_path / "vggish_pca_params-970ea276.pth")
    got = with_pca.embed([wav])[0].embeddings
    applied = pca["pca_eigen_vectors"] @ (want.T.astype(np.float64) - pca["pca_means"][:, None])
    expect = np.round((np.clip(applied.T, -2, 2) + 2) * (255.0 / 4.0))
    assert np.mean(np.abs(got - expect) <= 1.0) == 1.0 and "+pca:" in with_pca.sha256


def test_vggish_bad_files_name_the_tensor(vggish_file, tmp_path):
    ref, _ = vggish_file
    state = ref.state_dict()
    state["embeddings.4.weight"] = torch.zeros(64, 4096)
    torch.save(state, tmp_path / "v.pth")
    with pytest.raises(UserError, match=r"tensor 'embeddings.4.weight' has shape \(64, 4096\), expected \(128, 4096\)"):
        vggish.load(tmp_path / "v.pth")
    torch.save({"pca_means": np.zeros(128)}, tmp_path / "p.pth")
    with pytest.raises(UserError, match="missing tensor 'pca_eigen_vectors'"):
        vggish.load_pca(tmp_path / "p.pth")


def test_full_unpickler_only_after_the_tensor_loader_refuses(tmp_path, caplog):
    """PANNs' training checkpoints pickle numpy state beside the weights: the tensors-only
    loader refuses them, and they are read with a warning; a non-torch file is a one-line error."""
    from regnet.metrics.embedders import torch_load

    torch.save({"model": {"w": torch.ones(2)}, "sampler": np.random.RandomState(0)}, tmp_path / "c.pth")
    blob = torch_load(tmp_path / "c.pth")
    assert torch.equal(blob["model"]["w"], torch.ones(2)) and "full unpickler" in caplog.text
    caplog.clear()
    torch.save({"w": torch.ones(2)}, tmp_path / "plain.pth")
    torch_load(tmp_path / "plain.pth")
    assert "full unpickler" not in caplog.text
    (tmp_path / "junk.pth").write_text("not a checkpoint")
    with pytest.raises(UserError, match="junk.pth: not a torch file"):
        torch_load(tmp_path / "junk.pth")


def test_cli_embedding_option_errors(bench, tmp_path, capsys):
    base = ["evaluate", "--clips", str(bench_clips(bench, "good")[0]), "--manifest", str(bench / "manifest.csv"),
            "--out", str(tmp_path / "r")]
    for extra, expect in ((["--embedding", "vggish=a.pth", "--embedding", "vggish=b.pth"], "vggish given twice"),
                          (["--vggish-pca", "p.pth"], "--vggish-pca: give --embedding vggish=PATH too"),
                          (["--embedding", "a.pt", "--embedding", "b.pt"], "one fit-embedder file at most"),
                          (["--bootstrap", "-1"], "--bootstrap: must be >= 0")):
        assert main(base + extra) == 2
        assert expect in capsys.readouterr().err


def test_embedding_specs():
    assert parse_spec("vggish=/x/v.pth") == EmbedderSpec("vggish", Path("/x/v.pth"))
    assert parse_spec("embedder.pt") is None
    assert parse_spec("passt=p.pt").name == "passt"
    assert parse_spec("clap=c.pt").name == "clap"
    with pytest.raises(UserError, match="unknown embedder 'msclap'"):
        parse_spec("msclap=/x.pt")
    with pytest.raises(UserError, match="needs the path"):
        parse_spec("vggish=")
    with pytest.raises(UserError, match="weights not found"):
        load_released(EmbedderSpec("panns-cnn14", Path("/nonexistent/Cnn14.pth")))


def test_evaluate_writes_fd_kl_is_with_sha_and_rate(bench, cnn14_file, vggish_file, tmp_path, capsys):
    _, cnn = cnn14_file
    _, vgg = vggish_file
    out = tmp_path / "res"
    rc = main(["evaluate", "--clips", *map(str, bench_clips(bench, "good", "late")), "--manifest",
               str(bench / "manifest.csv"), "--reference", "clean", "--embedding", f"panns-cnn14={cnn}",
               "--embedding", f"vggish={vgg}", "--bootstrap", "20", "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert str(out / "objective_clips_embedders.csv") in printed
    s = pd.read_csv(out / "objective.csv")
    rel = s[s.embedder.notna()]
    assert set(rel.metric) == {"fd_panns-cnn14", "kl_softmax_panns-cnn14", "kl_sigmoid_panns-cnn14",
                               "is_panns-cnn14", "fd_vggish"}
    sha = {"panns-cnn14": hashlib.sha256(cnn.read_bytes()).hexdigest(),
           "vggish": hashlib.sha256(vgg.read_bytes()).hexdigest()}
    for _, r in rel.iterrows():
        assert r.weights_sha256 == sha[r.embedder] and r.sample_rate_hz == 16000
    v = rel.set_index(["system", "metric"])
    # 'good' is the clean track itself: zero distance and divergence (up to KL's EPS)
    assert v.loc[("good", "fd_panns-cnn14"), "mean"] == pytest.approx(0.0, abs=1e-6)
    assert v.loc[("good", "fd_vggish"), "mean"] == pytest.approx(0.0, abs=1e-6)
    # (identical posteriors give -sum_c p_c * 1e-6 / p_c = -527e-6 with the reference's EPS)
    assert v.loc[("good", "kl_softmax_panns-cnn14"), "mean"] == pytest.approx(-527e-6, abs=1e-5)
    assert v.loc[("late", "fd_panns-cnn14"), "mean"] > 0 and v.loc[("late", "fd_vggish"), "mean"] > 0
    late_kl = v.loc[("late", "kl_softmax_panns-cnn14")]
    # (random weights give near-flat posteriors: small, but above the identical clips' value)
    assert late_kl["mean"] > v.loc[("good", "kl_softmax_panns-cnn14"), "mean"] + 1e-7
    assert late_kl.ci95_low <= late_kl["mean"] <= late_kl.ci95_high
    assert late_kl.ci_method == "bootstrap"
    assert v.loc[("late", "is_panns-cnn14"), "mean"] >= 1.0
    clips = pd.read_csv(out / "objective_clips_embedders.csv")
    assert len(clips) == 2 * 3 * 2 and set(clips.weights_sha256) == {sha["panns-cnn14"]}
    # the summary is the mean of the per-clip values (the sigmoid variant is not a true
    # divergence: un-normalised sigmoids can make it negative)
    per = clips[(clips.system == "late") & (clips.metric == "kl_sigmoid_panns-cnn14")]["value"]
    assert v.loc[("late", "kl_sigmoid_panns-cnn14"), "mean"] == pytest.approx(per.mean(), abs=1e-5)
    # the per-clip KL values are columns of objective_clips.csv too, which the human-vs-machine
    # report reads (lower is better there)
    wide = pd.read_csv(out / "objective_clips.csv").set_index(["system", "video_id"])
    long = clips.set_index(["system", "video_id", "metric"])["value"]
    for (system, vid), row in wide.iterrows():
        assert row["kl_softmax_panns-cnn14"] == pytest.approx(long[(system, vid, "kl_softmax_panns-cnn14")])
    from mturk.report.objective import _sign, load_objective

    _, metrics = load_objective(out / "objective_clips.csv")
    assert "kl_sigmoid_panns-cnn14" in metrics and _sign("kl_sigmoid_panns-cnn14") == -1.0
    md = (out / "objective.md").read_text()
    assert "## Released embedders" in md and sha["vggish"] in md and "FD (panns-cnn14) ↓" in md
    assert not math.isnan(v.loc[("late", "fd_vggish"), "ci95_high"])
