"""The authors' WaveNet vocoders (r9y9 wavenet_vocoder ``*_ema.pth``): import, export, errors,
the transposed upsampler, and cached sampling against the full forward pass.

The r9y9 state dict is written out here key by key (weight-normalised convs: ``weight_g``
``[out, 1, 1]``, ``weight_v``, ``bias``; ``upsample_conv.{0,2,4,6}`` ConvTranspose2d(1, 1, (3, s))),
in a small config, with random values.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from regnet.authors.checkpoints import export_checkpoint, import_checkpoint, kind_of
from regnet.authors.detect import maybe_import
from regnet.config import preset
from regnet.errors import UserError
from regnet.vocoder.checkpoint import load_wavenet
from regnet.vocoder.sampler import FastSampler, ReferenceSampler, UniformStream, naive_sample
from regnet.vocoder.wavenet import shift_right

L, STACKS, R, GATE, SKIP, KER, CIN, OUT = 4, 2, 8, 8, 6, 3, 80, 30
SCALES = (4, 4, 4, 4)


def _r9y9_state(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)

    def wn(name, out, inp, k):
        return {f"{name}.weight_g": torch.rand(out, 1, 1, generator=g) + 0.5,
                f"{name}.weight_v": torch.randn(out, inp, k, generator=g),
                f"{name}.bias": torch.randn(out, generator=g) * 0.1}

    sd = wn("first_conv", R, 1, 1)
    for i in range(L):
        sd |= wn(f"conv_layers.{i}.conv", GATE, R, KER) | wn(f"conv_layers.{i}.conv1x1c", GATE, CIN, 1)
        sd |= wn(f"conv_layers.{i}.conv1x1_out", R, GATE // 2, 1) | wn(f"conv_layers.{i}.conv1x1_skip", SKIP, GATE // 2, 1)
    sd |= wn("last_conv_layers.1", SKIP, SKIP, 1) | wn("last_conv_layers.3", OUT, SKIP, 1)
    for j, s in enumerate(SCALES):
        sd |= {f"upsample_conv.{2 * j}.weight_g": torch.rand(1, 1, 1, 1, generator=g) + 0.5,
               f"upsample_conv.{2 * j}.weight_v": torch.rand(1, 1, 3, s, generator=g),
               f"upsample_conv.{2 * j}.bias": torch.randn(1, generator=g) * 0.1}
    return sd


def _save(path, sd, step=200000):
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": sd, "optimizer": None, "global_step": step, "global_epoch": 7}, path)
    return path


def _w(sd, name):
    """r9y9's weight norm: w = g * v / ||v||, the norm over every dim but the first."""
    v, g = sd[f"{name}.weight_v"], sd[f"{name}.weight_g"]
    return g * v / v.flatten(1).norm(dim=1).view(-1, *([1] * (v.dim() - 1)))


def _ref_upsample(sd, mel):
    c = mel.unsqueeze(1)
    for j, s in enumerate(SCALES):
        n = f"upsample_conv.{2 * j}"
        c = F.relu(F.conv_transpose2d(c, _w(sd, n), sd[f"{n}.bias"], stride=(1, s), padding=(1, 0)))
    return c.squeeze(1)


def _ref_forward(sd, x_prev, c, rule="r9y9-2092a64"):
    x = F.conv1d(x_prev, _w(sd, "first_conv"), sd["first_conv.bias"])
    skips = 0
    for i in range(L):
        n, d = f"conv_layers.{i}", 2 ** (i % (L // STACKS))
        h = F.conv1d(F.pad(x, ((KER - 1) * d, 0)), _w(sd, f"{n}.conv"), sd[f"{n}.conv.bias"], dilation=d)
        h = h + F.conv1d(c, _w(sd, f"{n}.conv1x1c"), sd[f"{n}.conv1x1c.bias"])
        a, b = h.split(GATE // 2, dim=1)
        z = torch.tanh(a) * torch.sigmoid(b)
        h_i = F.conv1d(z, _w(sd, f"{n}.conv1x1_skip"), sd[f"{n}.conv1x1_skip.bias"])
        # r9y9 wavenet_vocoder at 2092a64 (the commit the authors bundle): the first layer's skip
        # as it is, then after every later layer (skips + h_i) * sqrt(0.5); no final 1/sqrt(L).
        # 'sum-sqrt' (this project's own training): the plain sum, scaled once by sqrt(1/L).
        if rule == "r9y9-2092a64":
            skips = h_i if i == 0 else (skips + h_i) * math.sqrt(0.5)
        else:
            skips = h_i if i == 0 else skips + h_i
        x = (F.conv1d(z, _w(sd, f"{n}.conv1x1_out"), sd[f"{n}.conv1x1_out.bias"]) + x) * math.sqrt(0.5)
    y = F.relu(skips if rule == "r9y9-2092a64" else skips * math.sqrt(1.0 / L))
    y = F.relu(F.conv1d(y, _w(sd, "last_conv_layers.1"), sd["last_conv_layers.1.bias"]))
    return F.conv1d(y, _w(sd, "last_conv_layers.3"), sd["last_conv_layers.3.bias"])


@pytest.fixture
def imported(tmp_path):
    sd = _r9y9_state()
    src = _save(tmp_path / "rel" / "dog_checkpoint_step000200000_ema.pth", sd)
    done = import_checkpoint(src, tmp_path / "voc.pt", preset("tiny"))
    return sd, src, done


def test_import_infers_sizes_and_export_round_trips_bit_exactly(tmp_path, imported):
    sd, src, done = imported
    v = done.config.vocoder
    assert (v.layers, v.stacks, v.residual_channels, v.gate_channels, v.skip_channels) == (L, STACKS, R, GATE, SKIP)
    assert (v.kernel_size, v.cin_channels, v.n_mix, tuple(v.upsample_scales)) == (KER, CIN, OUT // 3, SCALES)
    assert v.upsample_net == "transposed" and v.log_scale_min == pytest.approx(math.log(1e-14))
    assert done.class_name == "dog" and done.step == 200000 and kind_of(src) == "wavenet"
    assert v.skip_rule == "r9y9-2092a64"
    assert torch.load(tmp_path / "voc.pt", weights_only=True)["config"]["skip_rule"] == "r9y9-2092a64"
    out = export_checkpoint(tmp_path / "voc.pt", tmp_path / "back.pth")[0]
    back = torch.load(out, weights_only=True)
    assert back["global_step"] == 200000 and set(back["state_dict"]) == set(sd)
    for k, t in sd.items():
        assert torch.equal(back["state_dict"][k], t), k


def test_imported_network_matches_r9y9_computation(tmp_path, imported):
    sd, _, _ = imported
    model, _, _ = load_wavenet(tmp_path / "voc.pt")
    gen = torch.Generator().manual_seed(1)
    mel = torch.rand(2, CIN, 3, generator=gen)
    x_prev = torch.rand(2, 1, 3 * 256, generator=gen) * 2 - 1
    with torch.no_grad():
        c = model.upsample_net(mel)
        torch.testing.assert_close(c, _ref_upsample(sd, mel), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(model(x_prev, mel), _ref_forward(sd, x_prev, c), atol=1e-5, rtol=1e-5)


def test_cached_sampling_params_equal_full_forward(tmp_path, imported):
    model, _, _ = load_wavenet(tmp_path / "voc.pt")
    assert model.skip_rule == "r9y9-2092a64"
    gen = torch.Generator().manual_seed(2)
    mel = torch.rand(2, CIN, 2, generator=gen)
    n = 256 + 64  # crosses a frame (and, for the fast sampler, a chunk) boundary
    audio = torch.rand(2, n, generator=gen) * 1.6 - 0.8
    with torch.no_grad():
        full = model(shift_right(audio), mel).transpose(1, 2)
    for sampler in (ReferenceSampler(model), FastSampler(model, chunk_frames=1)):
        _, params = sampler.run(mel, n, UniformStream(2, OUT // 3, seed=0), teacher=audio, record=True)
        torch.testing.assert_close(params, full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("edit, needles", [
    (lambda sd: sd.pop("conv_layers.2.conv1x1c.bias"), ["conv_layers.2.conv1x1c.bias", "missing"]),
    (lambda sd: sd.update({"conv_layers.1.conv1x1g.weight_v": torch.zeros(GATE, 4, 1)}),
     ["conv_layers.1.conv1x1g.weight_v", "not part of the layout"]),
    (lambda sd: sd.update({"last_conv_layers.1.weight_g": torch.zeros(SKIP, 1)}),
     ["last_conv_layers.1.weight_g", f"[{SKIP}, 1]", f"[{SKIP}, 1, 1]"]),
])
def test_layout_errors_name_the_key(tmp_path, edit, needles):
    sd = _r9y9_state()
    edit(sd)
    src = _save(tmp_path / "x_ema.pth", sd)
    with pytest.raises(UserError) as e:
        import_checkpoint(src, tmp_path / "voc.pt", preset("tiny"))
    assert "\n" not in str(e.value) and all(n in str(e.value) for n in needles), str(e.value)


def test_stacks_must_divide_layers_and_maybe_import_caches(tmp_path, imported):
    _, src, _ = imported
    base = preset("tiny")
    base.vocoder.stacks = 3
    with pytest.raises(UserError, match="vocoder.stacks"):
        import_checkpoint(src, tmp_path / "v2.pt", base)
    conv = maybe_import(src, preset("tiny"))
    assert kind_of(conv) == "ours" and maybe_import(src, preset("tiny")) == conv


def test_free_running_samplers_draw_what_the_full_forward_draws(tmp_path, imported):
    """Incremental sampling under the authors' rule, fed its own samples, equals re-running the full
    network for every sample (naive_sample) under the same uniforms."""
    model, _, _ = load_wavenet(tmp_path / "voc.pt")
    mel = torch.rand(2, CIN, 1, generator=torch.Generator().manual_seed(3))
    n = 96
    want = naive_sample(model, mel, n, UniformStream(2, OUT // 3, seed=5))
    for sampler in (ReferenceSampler(model), FastSampler(model, chunk_frames=1)):
        got, _ = sampler.run(mel, n, UniformStream(2, OUT // 3, seed=5))
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def _legacy(tmp_path, kind):
    """A checkpoint as written before vocoder.skip_rule existed."""
    ck = torch.load(tmp_path / "voc.pt", weights_only=True)
    del ck["config"]["skip_rule"]
    ck["source"] = {"kind": kind, "path": "x"}
    torch.save(ck, tmp_path / f"legacy-{kind}.pt")
    return tmp_path / f"legacy-{kind}.pt"


def test_checkpoints_without_a_recorded_rule(tmp_path, imported):
    sd, _, _ = imported
    old_import = load_wavenet(_legacy(tmp_path, "authors-wavenet"))[0]
    assert old_import.skip_rule == "r9y9-2092a64"
    assert load_wavenet(_legacy(tmp_path, "trained"))[0].skip_rule == "sum-sqrt"
    back = torch.load(export_checkpoint(_legacy(tmp_path, "authors-wavenet"), tmp_path / "b.pth")[0],
                      weights_only=True)["state_dict"]
    assert all(torch.equal(back[k], t) for k, t in sd.items())


def test_sum_sqrt_network_keeps_its_sum_and_exports_to_the_same_output(tmp_path, imported):
    """The same weights under 'sum-sqrt' compute the plain scaled sum; exported to the authors' layout
    (whose code runs the 2092a64 recurrence) the skip convs are rescaled so their output is unchanged."""
    sd, _, _ = imported
    ck = torch.load(tmp_path / "voc.pt", weights_only=True)
    ck["config"]["skip_rule"] = "sum-sqrt"
    torch.save(ck, tmp_path / "sum.pt")
    model, _, _ = load_wavenet(tmp_path / "sum.pt")
    gen = torch.Generator().manual_seed(4)
    mel = torch.rand(1, CIN, 2, generator=gen)
    x_prev = torch.rand(1, 1, 2 * 256, generator=gen) * 2 - 1
    back = torch.load(export_checkpoint(tmp_path / "sum.pt", tmp_path / "sum.pth")[0], weights_only=True)
    with torch.no_grad():
        c = model.upsample_net(mel)
        ours = model(x_prev, mel)
        torch.testing.assert_close(ours, _ref_forward(sd, x_prev, c, rule="sum-sqrt"), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(_ref_forward(back["state_dict"], x_prev, c), ours, atol=1e-5, rtol=1e-5)
        assert (ours - _ref_forward(sd, x_prev, c)).abs().max() > 1e-2  # the two rules do differ here


def test_unknown_skip_rule_is_a_one_line_error(tmp_path, imported):
    ck = torch.load(tmp_path / "voc.pt", weights_only=True)
    ck["config"]["skip_rule"] = "sum"
    torch.save(ck, tmp_path / "bad.pt")
    with pytest.raises(UserError, match="vocoder.skip_rule 'sum'"):
        load_wavenet(tmp_path / "bad.pt")
    cfg = preset("tiny")
    cfg.vocoder.skip_rule = "sum"
    with pytest.raises(UserError, match="vocoder.skip_rule"):
        cfg.validate()


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_graph_sampler_follows_the_authors_rule(tmp_path, imported):
    model, _, _ = load_wavenet(tmp_path / "voc.pt", "cuda")
    mel = torch.rand(2, CIN, 2, generator=torch.Generator().manual_seed(6)).cuda()
    n = 2 * 256
    ref, _ = ReferenceSampler(model).run(mel, n, UniformStream(2, OUT // 3, 7, "cuda"))
    graph, _ = FastSampler(model, use_graph=True, chunk_frames=1).run(mel, n, UniformStream(2, OUT // 3, 7, "cuda"))
    assert torch.allclose(ref, graph, atol=1e-4)
