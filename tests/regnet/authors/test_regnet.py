"""The authors' RegNet checkpoints (checkpoint_XXXXXX_netG / _netD): import, export, errors, forward.

The authors' state dicts are built here by modules that copy only the *names and nesting* of
their Regnet_G / Regnet_D (github PeihaoChen/regnet model.py), in a small config, filled with
random values. The forward check recomputes their layer sequence with torch.nn.functional calls
on those source tensors.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from regnet.authors.checkpoints import export_checkpoint, import_checkpoint, kind_of
from regnet.authors.detect import maybe_import
from regnet.config import preset
from regnet.errors import UserError
from regnet.train.checkpoint import load_regnet

# Small sizes: visual 12 (rgb 6 + flow 6), z 4, encoder 16 (k5), BiLSTM hidden 4, D 6.
V, Z, E, K, H, D, G, P = 12, 4, 16, 5, 4, 6, 8, 8
FC, BC, CH = 8, 4, (8, 8, 8)
M = 80


class _ConvNorm(nn.Module):
    def __init__(self, i: int, o: int, k: int):
        super().__init__()
        self.conv = nn.Conv1d(i, o, k, padding=k // 2)


class _AuthorsG(nn.Module):
    """Names as their Regnet_G with auxiliary_type lstm_last (or lstm_sample: hidden D/2, no proj)."""

    def __init__(self, sample: bool = False):
        super().__init__()
        self.encoder = nn.Module()
        self.encoder.convolutions = nn.ModuleList(
            nn.Sequential(_ConvNorm(V + Z if i == 0 else E, E, K), nn.BatchNorm1d(E)) for i in range(3))
        self.encoder.BiLSTM = nn.LSTM(E, H, 2, batch_first=True, bidirectional=True)
        self.encoder.BiLSTM_proj = nn.Linear(2 * H, 2 * H)
        self.auxiliary = nn.Module()
        self.auxiliary.BiLSTM = nn.LSTM(M, D // 2 if sample else D, 2, batch_first=True, bidirectional=True)
        if not sample:
            self.auxiliary.BiLSTM_proj = nn.Linear(D, D)
        self.decoder = nn.Module()
        self.decoder.model = nn.Sequential(
            nn.ConvTranspose1d(2 * H + D, G, 4, 2, 1), nn.BatchNorm1d(G), nn.ReLU(),
            nn.Conv1d(G, G, 5, padding=2), nn.BatchNorm1d(G), nn.ReLU(),
            nn.ConvTranspose1d(G, M, 4, 2, 1), nn.BatchNorm1d(M), nn.ReLU(),
            nn.Conv1d(M, M, 5, padding=2))
        dims = [M, P, P, P, P, M]
        self.postnet = nn.Module()
        self.postnet.convolutions = nn.ModuleList(
            nn.Sequential(_ConvNorm(dims[i], dims[i + 1], 5), nn.BatchNorm1d(dims[i + 1])) for i in range(5))


class _AuthorsD(nn.Module):
    def __init__(self):
        super().__init__()
        self.feature_conv = nn.Sequential(nn.ConvTranspose1d(V, FC, 4, 2, 1), nn.BatchNorm1d(FC),
                                          nn.LeakyReLU(0.2), nn.ConvTranspose1d(FC, BC, 4, 2, 1))
        self.mel_conv = nn.ConvTranspose1d(M, BC, 1)
        self.down_sampling = nn.Sequential(
            nn.Conv1d(2 * BC, CH[0], 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv1d(CH[0], CH[1], 4, 2, 1), nn.BatchNorm1d(CH[1]), nn.LeakyReLU(0.2),
            nn.Conv1d(CH[1], CH[2], 4, 1, 1), nn.BatchNorm1d(CH[2]), nn.LeakyReLU(0.2),
            nn.Conv1d(CH[2], 1, 4, 1, 1))


def _random_state(module: nn.Module, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for k, v in module.state_dict().items():
        if k.endswith("num_batches_tracked"):
            sd[k] = torch.randint(0, 10_000, (), generator=g)
        elif k.endswith("running_var"):
            sd[k] = torch.rand(v.shape, generator=g) + 0.5
        else:
            sd[k] = torch.randn(v.shape, generator=g) * 0.3
    return sd


def _write_pair(tmp_path, g_sd, d_sd, iteration=41000):
    prefix = tmp_path / "ckpt" / "checkpoint_041000"
    prefix.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"iteration": iteration, "learning_rate": 1.5e-4, "optimizer_netG": g_sd}, f"{prefix}_netG")
    if d_sd is not None:
        torch.save({"iteration": iteration, "learning_rate": 1.5e-4, "optimizer_netD": d_sd}, f"{prefix}_netD")
    return prefix


@pytest.fixture
def authors(tmp_path):
    g_sd, d_sd = _random_state(_AuthorsG(), 1), _random_state(_AuthorsD(), 2)
    return _write_pair(tmp_path, g_sd, d_sd), g_sd, d_sd


def test_import_infers_config_and_export_round_trips_bit_exactly(tmp_path, authors):
    prefix, g_sd, d_sd = authors
    base = preset("tiny")
    base.model.test_z = "zero"
    ours = tmp_path / "ours.pt"
    done = import_checkpoint(f"{prefix}_netG", ours, base, class_name="dog")
    m = done.config.model
    assert (m.visual_dim, m.z_dim, m.encoder_channels, m.encoder_kernel, m.lstm_hidden) == (V, Z, E, K, H)
    assert (m.regularizer, m.aux_dim, m.aux_sample >= done.config.data.mel_frames) == ("lstm", D, True)
    assert (m.generator_channels, m.postnet_channels, m.disc_feature_channels, m.disc_branch_channels) == (G, P, FC, BC)
    assert tuple(m.disc_channels) == CH and m.test_z == "zero"  # switches come from the given config
    model, cfg, meta = load_regnet(ours)
    assert meta["step"] == 41000 and meta["class_name"] == "dog"

    out = tmp_path / "export" / "checkpoint_041000"
    written = export_checkpoint(ours, out)
    assert {p.name for p in written} == {"checkpoint_041000_netG", "checkpoint_041000_netD",
                                         "checkpoint_041000_opts.yml"}
    for name, key, src in (("G", "optimizer_netG", g_sd), ("D", "optimizer_netD", d_sd)):
        back = torch.load(f"{out}_net{name}", weights_only=True)
        assert back["iteration"] == 41000
        assert set(back[key]) == set(src)
        for k, v in src.items():
            assert back[key][k].dtype == v.dtype and torch.equal(back[key][k], v), k


def test_prefix_and_either_file_are_detected(authors):
    prefix, _, _ = authors
    for p in (prefix, f"{prefix}_netG", f"{prefix}_netD"):
        assert kind_of(p) == "regnet"


def _lstm_dir(x, sd, pre, sfx):
    """One LSTM direction over x [B, T, C] step by step (PyTorch gate order i, f, g, o)."""
    w_ih, w_hh = sd[f"{pre}.weight_ih_{sfx}"], sd[f"{pre}.weight_hh_{sfx}"]
    b = sd[f"{pre}.bias_ih_{sfx}"] + sd[f"{pre}.bias_hh_{sfx}"]
    hid = w_hh.shape[1]
    h = x.new_zeros(x.shape[0], hid)
    c = x.new_zeros(x.shape[0], hid)
    reverse = sfx.endswith("_reverse")
    steps = range(x.shape[1] - 1, -1, -1) if reverse else range(x.shape[1])
    outs = [None] * x.shape[1]
    for t in steps:
        gates = F.linear(x[:, t], w_ih) + F.linear(h, w_hh) + b
        i, f, g, o = gates.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        outs[t] = h
    return torch.stack(outs, dim=1), h


def _bilstm2(x, sd, pre):
    last = None
    for layer in range(2):
        fwd, _ = _lstm_dir(x, sd, pre, f"l{layer}")
        bwd, last = _lstm_dir(x, sd, pre, f"l{layer}_reverse")
        x = torch.cat([fwd, bwd], dim=2)
    return x, last  # outputs of the top layer, final state of its backward direction (their h[-1])


def _bn(x, sd, pre):
    return F.batch_norm(x, sd[f"{pre}.running_mean"], sd[f"{pre}.running_var"], sd[f"{pre}.weight"],
                        sd[f"{pre}.bias"], training=False, eps=1e-5)


def _reference(sd, visual, z, mode):
    """Their Regnet_G at test time, layer by layer, from the source tensors."""
    B, T, _ = visual.shape
    x = torch.cat([visual.transpose(1, 2), z[:, :, None].expand(-1, -1, T)], dim=1)
    for i in range(3):
        p = f"encoder.convolutions.{i}"
        x = F.conv1d(x, sd[f"{p}.0.conv.weight"], sd[f"{p}.0.conv.bias"], padding=K // 2)
        x = F.relu(_bn(x, sd, f"{p}.1"))  # dropout is off at test time
    x, _ = _bilstm2(x.transpose(1, 2), sd, "encoder.BiLSTM")
    enc = F.linear(x, sd["encoder.BiLSTM_proj.weight"], sd["encoder.BiLSTM_proj.bias"])
    if mode == "zero_output":
        aux = enc.new_zeros(B, T, D)
    else:  # their mode_input 'vis': the regularizer reads an all-zero spectrogram
        _, h = _bilstm2(visual.new_zeros(B, 4 * T, M), sd, "auxiliary.BiLSTM")
        aux = F.linear(h, sd["auxiliary.BiLSTM_proj.weight"], sd["auxiliary.BiLSTM_proj.bias"])
        aux = aux[:, None, :].expand(-1, T, -1)
    y = torch.cat([enc, aux], dim=2).transpose(1, 2)
    p = "decoder.model"
    y = F.relu(_bn(F.conv_transpose1d(y, sd[f"{p}.0.weight"], sd[f"{p}.0.bias"], stride=2, padding=1), sd, f"{p}.1"))
    y = F.relu(_bn(F.conv1d(y, sd[f"{p}.3.weight"], sd[f"{p}.3.bias"], padding=2), sd, f"{p}.4"))
    y = F.relu(_bn(F.conv_transpose1d(y, sd[f"{p}.6.weight"], sd[f"{p}.6.bias"], stride=2, padding=1), sd, f"{p}.7"))
    mel_init = F.conv1d(y, sd[f"{p}.9.weight"], sd[f"{p}.9.bias"], padding=2)
    r = mel_init
    for i in range(5):
        p = f"postnet.convolutions.{i}"
        r = _bn(F.conv1d(r, sd[f"{p}.0.conv.weight"], sd[f"{p}.0.conv.bias"], padding=2), sd, f"{p}.1")
        r = torch.tanh(r) if i < 4 else r
    return mel_init, mel_init + r


@pytest.mark.parametrize("mode", ["zero_output", "zero_input"])
def test_imported_forward_equals_their_layer_sequence(tmp_path, authors, mode):
    prefix, g_sd, _ = authors
    base = preset("tiny")
    base.model.test_regularizer = mode
    import_checkpoint(prefix, tmp_path / "ours.pt", base)
    model, cfg, _ = load_regnet(tmp_path / "ours.pt")
    gen = torch.Generator().manual_seed(0)
    T = cfg.data.n_steps
    visual = torch.randn(2, T, V, generator=gen)
    z = torch.randn(2, Z, generator=gen)
    with torch.no_grad():
        init, post = model(visual, None, z=z)
        ref_init, ref_post = _reference(g_sd, visual, z, mode)
    assert init.shape == (2, M, 4 * T)
    torch.testing.assert_close(init, ref_init, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(post, ref_post, atol=1e-5, rtol=1e-5)


def _one_line_error(prefix, tmp_path, *needles):
    with pytest.raises(UserError) as e:
        import_checkpoint(prefix, tmp_path / "bad.pt", preset("tiny"))
    msg = str(e.value)
    assert "\n" not in msg
    for n in needles:
        assert n in msg, msg
    assert not (tmp_path / "bad.pt").exists()


def test_missing_extra_and_misshaped_tensors_name_the_key(tmp_path):
    g_sd, d_sd = _random_state(_AuthorsG(), 1), _random_state(_AuthorsD(), 2)

    missing = dict(g_sd)
    del missing["decoder.model.4.running_var"]
    _one_line_error(_write_pair(tmp_path / "a", missing, d_sd), tmp_path, "decoder.model.4.running_var", "missing")

    extra = dict(g_sd)
    extra["decoder.model.5.weight"] = torch.zeros(3)
    _one_line_error(_write_pair(tmp_path / "b", extra, d_sd), tmp_path, "decoder.model.5.weight")

    wrong = dict(g_sd)
    wrong["postnet.convolutions.2.0.conv.weight"] = torch.zeros(P, P, 3)
    _one_line_error(_write_pair(tmp_path / "c", wrong, d_sd), tmp_path,
                    "postnet.convolutions.2.0.conv.weight", f"[{P}, {P}, 3]", f"[{P}, {P}, 5]")

    d_wrong = dict(d_sd)
    d_wrong["down_sampling.3.weight"] = torch.zeros(CH[1] + 1)
    _one_line_error(_write_pair(tmp_path / "d", g_sd, d_wrong), tmp_path, "_netD", "down_sampling.3.weight")


def test_lstm_sample_needs_s_and_round_trips(tmp_path):
    g_sd, d_sd = _random_state(_AuthorsG(sample=True), 3), _random_state(_AuthorsD(), 4)
    prefix = _write_pair(tmp_path, g_sd, d_sd)
    with pytest.raises(UserError, match="model.aux_sample"):
        import_checkpoint(prefix, tmp_path / "x.pt", preset("tiny"))
    base = preset("tiny")
    base.model.aux_sample = 32
    done = import_checkpoint(prefix, tmp_path / "ours.pt", base)
    assert (done.config.model.aux_dim, done.config.model.aux_sample) == (D, 32)
    export_checkpoint(tmp_path / "ours.pt", tmp_path / "back")
    back = torch.load(f"{tmp_path / 'back'}_netG", weights_only=True)["optimizer_netG"]
    assert set(back) == set(g_sd) and all(torch.equal(back[k], v) for k, v in g_sd.items())


def test_maybe_import_converts_once_and_passes_other_paths_through(tmp_path, authors):
    prefix, _, _ = authors
    base = preset("tiny")
    assert maybe_import("griffin-lim", base) == "griffin-lim"
    first = maybe_import(prefix, base)
    assert str(first).endswith(".regnet-bench.pt") and kind_of(first) == "ours"
    stamp = first.stat().st_mtime_ns
    assert maybe_import(f"{prefix}_netG", base) == first and first.stat().st_mtime_ns == stamp
    assert maybe_import(first, base) == first


def test_generate_reads_an_imported_feature_cache_with_an_imported_model(tmp_path, authors):
    import pickle
    from pathlib import Path

    import numpy as np

    from regnet.authors.features import import_features
    from regnet.generation.generate import _FeatureSource
    from regnet.generation.inputs import VideoItem

    prefix, _, _ = authors
    base = preset("tiny")
    base.data.pad_mode = "zero"
    import_checkpoint(prefix, tmp_path / "ours.pt", base)
    model, cfg, meta = load_regnet(tmp_path / "ours.pt")
    rel = tmp_path / "rel"
    for d in ("rgb", "flow", "mel"):
        (rel / d).mkdir(parents=True)
    for d in ("rgb", "flow"):
        (rel / d / "vid1.pkl").write_bytes(pickle.dumps(np.ones((30, V // 2))))
    np.save(rel / "mel" / "vid1_mel.npy", np.zeros((M, 120)))
    (rel / "ids.txt").write_text("vid1\n")
    res = import_features(rel / "rgb", rel / "flow", rel / "mel", rel / "ids.txt", tmp_path / "cache", base.data, "dog")
    assert meta["data_hash"] == res.config_hash and res.config_hash.startswith("external:")

    src = _FeatureSource(cfg, meta["data_hash"], tmp_path / "cache", torch.device("cpu"), tmp_path / "ours.pt")
    f = src.get(VideoItem("vid1", "dog", Path("vid1.mp4")))
    assert f.visual.shape == (cfg.data.n_steps, V)
    with torch.no_grad():
        assert model.generate(torch.from_numpy(f.visual)[None].float(), seed=0).shape == (1, M, cfg.data.mel_frames)
    # Videos missing from the cache are not extracted with another backbone: the error says so.
    with pytest.raises(UserError, match="--features"):
        src.get(VideoItem("vid2", "dog", Path("vid2.mp4")))


def test_cli_import_and_export(tmp_path, authors, capsys):
    from regnet.cli import main

    prefix, g_sd, _ = authors
    ours = tmp_path / "dog.pt"
    rc = main(["import-checkpoint", str(prefix), "--out", str(ours), "--class", "dog", "--preset", "tiny",
               "--z", "zero", "--test-regularizer", "zero_input"])
    assert rc == 0 and capsys.readouterr().out.strip() == str(ours)
    _, cfg, meta = load_regnet(ours)
    assert (cfg.model.test_z, cfg.model.test_regularizer, meta["class_name"]) == ("zero", "zero_input", "dog")
    rc = main(["export-checkpoint", str(ours), "--format", "authors", "--out", str(tmp_path / "x" / "ck")])
    assert rc == 0 and len(capsys.readouterr().out.split()) == 3
    rc = main(["import-checkpoint", str(tmp_path / "nothing"), "--out", str(tmp_path / "y.pt")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("error: ") and "\n" not in err


def test_test_regularizer_words_match_the_authors_code():
    """Their documented test command (`aux_zero True`) zeroes the regularizer's OUTPUT (zero_output);
    only an explicit `mode_input vis` zeroes its input (zero_input). Every description says so."""
    import inspect
    from pathlib import Path

    import regnet.config
    import regnet.models.regnet
    from regnet.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command" or hasattr(a, "choices") and
               isinstance(a.choices, dict) and "import-checkpoint" in a.choices)
    helps = {a.dest: a.help for a in sub.choices["import-checkpoint"]._actions}
    root = Path(regnet.config.__file__).parents[1]
    texts = [helps["test_regularizer"], inspect.getsource(regnet.config), inspect.getsource(regnet.models.regnet),
             (root / "README.md").read_text()]
    for text in texts:
        flat = " ".join(text.split())
        assert "test code's zeroed spectrogram" not in flat and "their code zeroes the regularizer's input" not in flat
        assert "aux_zero True" in flat and "mode_input vis" in flat
