"""WaveNet sampling: cached incremental steps against the full forward pass, the fast sampler
against the reference step, and the mixture-of-logistics likelihood against a direct computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from regnet.config import VocoderConfig
from regnet.vocoder.mixture import mol_log_prob, sample_mol
from regnet.vocoder.sampler import FastSampler, ReferenceSampler, UniformStream, naive_sample
from regnet.vocoder.wavenet import WaveNet, receptive_field, shift_right

HOP = 16  # a short hop keeps the tests fast; the geometry code does not care


def small_wavenet(upsample_net: str = "stretch", seed: int = 0) -> WaveNet:
    cfg = VocoderConfig(layers=6, stacks=2, residual_channels=8, gate_channels=12, skip_channels=10,
                        n_mix=3, cin_channels=5, upsample_scales=(4, 4), upsample_net=upsample_net,
                        dropout=0.0)
    torch.manual_seed(seed)
    m = WaveNet(cfg)
    with torch.no_grad():  # random biases and upsampler taps so no term is trivially zero
        for name, p in m.named_parameters():
            if name.endswith("bias") or "up_layers" in name:
                p.add_(torch.randn_like(p) * 0.2)
    return m.eval()


def _inputs(m: WaveNet, B: int = 2, frames: int = 5, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    mel = torch.rand(B, m.cfg.cin_channels, frames, generator=g)
    audio = torch.rand(B, frames * m.hop, generator=g) * 1.6 - 0.8
    return mel, audio


@pytest.mark.parametrize("upsample_net", ["stretch", "transposed"])
@pytest.mark.parametrize("sampler_cls", [ReferenceSampler, FastSampler])
def test_incremental_params_equal_full_forward(upsample_net, sampler_cls):
    m = small_wavenet(upsample_net)
    mel, audio = _inputs(m)
    T = audio.shape[1]
    full = m(shift_right(audio), mel).transpose(1, 2)  # [B, T, 3 n_mix]
    kwargs = {"chunk_frames": 2} if sampler_cls is FastSampler else {}  # chunk edges inside the clip
    _, params = sampler_cls(m, **kwargs).run(mel, T, UniformStream(2, m.cfg.n_mix, 0),
                                               teacher=audio, record=True)
    assert T > receptive_field(m.cfg)
    assert (params - full).abs().max().item() <= 1e-4


def test_fast_sampler_reproduces_reference_samples_exactly():
    m = small_wavenet()
    mel, _ = _inputs(m, B=3, frames=6)
    T = 6 * m.hop - 5  # not a whole number of frames or chunks
    ref, _ = ReferenceSampler(m).run(mel, T, UniformStream(3, m.cfg.n_mix, 42))
    fast, _ = FastSampler(m, chunk_frames=2).run(mel, T, UniformStream(3, m.cfg.n_mix, 42))
    assert ref.shape == fast.shape == (3, T)
    assert torch.equal(ref, fast)
    other, _ = FastSampler(m, chunk_frames=2).run(mel, T, UniformStream(3, m.cfg.n_mix, 43))
    assert not torch.equal(ref, other)  # the stream matters: equality above is not vacuous


def test_fast_sampler_reuses_buffers_between_runs():
    m = small_wavenet()
    mel, _ = _inputs(m, B=2, frames=3)
    fast = FastSampler(m, chunk_frames=1)
    a, _ = fast.run(mel, 40, UniformStream(2, m.cfg.n_mix, 5))
    b, _ = fast.run(mel, 40, UniformStream(2, m.cfg.n_mix, 5))  # a stale queue would change this
    assert torch.equal(a, b)


def test_naive_resampling_matches_cached():
    m = small_wavenet()
    mel, _ = _inputs(m, B=2, frames=4)
    T = 4 * m.hop
    naive = naive_sample(m, mel, T, UniformStream(2, m.cfg.n_mix, 9))
    cached, _ = ReferenceSampler(m).run(mel, T, UniformStream(2, m.cfg.n_mix, 9))
    assert torch.allclose(naive, cached, atol=1e-5)


def test_bf16_weights_stay_close_to_fp32():
    """The reduced-precision path (meant for CUDA) keeps mixture params within 0.1 of fp32."""
    m = small_wavenet()
    mel, audio = _inputs(m)
    T = audio.shape[1]
    _, p32 = FastSampler(m).run(mel, T, UniformStream(2, m.cfg.n_mix, 0), teacher=audio, record=True)
    _, p16 = FastSampler(m, dtype=torch.bfloat16).run(mel, T, UniformStream(2, m.cfg.n_mix, 0),
                                                       teacher=audio, record=True)
    assert (p16 - p32).abs().max().item() < 0.1


def _direct_log_prob(y, logits, means, log_scales, num_classes=2 ** 16):
    """Probability mass of the level at y, summed over components, in float64."""
    half = 1.0 / (num_classes - 1)
    sig = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
    w = np.exp(logits - logits.max())
    w /= w.sum()
    s = np.exp(log_scales)
    upper = 1.0 if y > 0.999 else sig((y + half - means) / s)
    lower = 0.0 if y < -0.999 else sig((y - half - means) / s)
    return math.log(float(np.sum(w * (upper - lower))))


@pytest.mark.parametrize("y", [-1.0, -0.31, 0.0, 0.2503, 1.0])
def test_mol_log_likelihood_matches_direct_computation(y):
    logits = np.array([0.3, -1.2, 0.8])
    means = np.array([-0.9, 0.1, 0.25])
    log_scales = np.array([-2.0, -3.0, -2.5])
    params = torch.tensor(np.concatenate([logits, means, log_scales]), dtype=torch.float32).view(1, 9, 1)
    got = mol_log_prob(params, torch.tensor([[y]]), log_scale_min=-7.0).item()
    assert got == pytest.approx(_direct_log_prob(y, logits, means, log_scales), abs=1e-3)


def test_mol_levels_sum_to_one():
    levels = torch.linspace(-1, 1, 2 ** 16).view(1, -1)
    params = torch.tensor([0.5, -0.5, -0.2, 0.3, -2.5, -4.0]).view(1, 6, 1).expand(1, 6, levels.shape[1])
    total = mol_log_prob(params, levels, log_scale_min=-7.0).exp().sum().item()
    assert total == pytest.approx(1.0, abs=2e-3)


def test_sample_mol_follows_the_chosen_component():
    # Component 1 dominates; its logistic (mean 0.3, scale e^-4) sets the sample statistics.
    y = torch.tensor([[-20.0, 20.0, -0.5, 0.3, -3.0, -4.0]]).expand(20000, 6)
    u = torch.rand(20000, 3, generator=torch.Generator().manual_seed(0)) * 0.9998 + 1e-4
    x = sample_mol(y, u, log_scale_min=-7.0)
    assert abs(x.mean().item() - 0.3) < 1e-3
    # logistic std = s * pi / sqrt(3)
    assert x.std().item() == pytest.approx(math.exp(-4.0) * math.pi / math.sqrt(3), rel=0.05)


def test_tiny_preset_vocoder_upsamples_to_the_hop(tiny_config):
    m = WaveNet(tiny_config.vocoder)
    mel = torch.rand(1, tiny_config.data.n_mels, 3)
    assert m.upsample_net(mel).shape[-1] == 3 * tiny_config.data.hop_length


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_graph_sampler_matches_eager_and_bf16_close():
    m = small_wavenet().cuda()
    mel, _ = _inputs(m, B=4, frames=6)
    mel = mel.cuda()
    T = 6 * m.hop
    eager, _ = FastSampler(m, use_graph=False, chunk_frames=2).run(mel, T, UniformStream(4, 3, 3, "cuda"))
    graph, _ = FastSampler(m, use_graph=True, chunk_frames=2).run(mel, T, UniformStream(4, 3, 3, "cuda"))
    ref, _ = ReferenceSampler(m).run(mel, T, UniformStream(4, 3, 3, "cuda"))
    assert torch.allclose(eager, graph, atol=1e-5)
    assert torch.allclose(ref, graph, atol=1e-4)
    _, p32 = FastSampler(m, use_graph=False).run(mel, T, UniformStream(4, 3, 0, "cuda"),
                                                 teacher=graph, record=True)
    _, p16 = FastSampler(m, dtype=torch.bfloat16, use_graph=False).run(
        mel, T, UniformStream(4, 3, 0, "cuda"), teacher=graph, record=True)
    assert (p16 - p32).abs().max().item() < 0.1
