"""RegNet model: paper sizes, shapes, test-time behaviour of the regularizer, variants, bad input."""

from __future__ import annotations

import pytest
import torch

from regnet.config import Config, preset
from regnet.errors import UserError
from regnet.models import Discriminator, RegNet, count_parameters


def _inputs(cfg: Config, batch: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(batch, cfg.data.n_steps, cfg.model.visual_dim, generator=g)
    m = torch.rand(batch, cfg.data.n_mels, cfg.data.mel_frames, generator=g)
    return v, m


def test_paper_parameter_counts():
    cfg = Config()
    g, d = RegNet(cfg), Discriminator(cfg)
    # Paper / authors' code: generator ~94 M of which the visual encoder ~86 M; discriminator ~11 M.
    assert count_parameters(g) == pytest.approx(94.1e6, rel=0.01)
    assert count_parameters(g.encoder) == pytest.approx(86.0e6, rel=0.01)
    assert count_parameters(d) == pytest.approx(11.4e6, rel=0.01)


def test_paper_shapes_215_to_860():
    cfg = Config()
    g, d = RegNet(cfg).eval(), Discriminator(cfg).eval()
    v, m = _inputs(cfg, batch=1)
    assert v.shape[1] == 215 and m.shape[2] == 860
    with torch.no_grad():
        mel_init, mel_post = g(v, m)
        p = d(v, mel_post)
    assert mel_init.shape == mel_post.shape == (1, 80, 860)
    assert p.shape[:2] == (1, 1) and ((p > 0) & (p < 1)).all()


def test_short_clip_shapes(tiny_config):
    g, d = RegNet(tiny_config), Discriminator(tiny_config)
    v, m = _inputs(tiny_config)
    mel_init, mel_post = g(v, m)
    assert mel_init.shape == mel_post.shape == (2, 80, tiny_config.data.mel_frames) == (2, 80, 172)
    assert d.logits(v, mel_post).shape[0] == 2


@pytest.mark.parametrize("mode", ["zero_output", "zero_input"])
def test_eval_output_ignores_true_mel(tiny_config, mode):
    tiny_config.model.test_regularizer = mode
    g = RegNet(tiny_config)
    v, m1 = _inputs(tiny_config, seed=1)
    _, m2 = _inputs(tiny_config, seed=2)
    z = torch.randn(2, tiny_config.model.z_dim)
    g.train()
    with torch.no_grad():
        # Training mode: the regularizer sees the mel, so the output must change with it.
        torch.manual_seed(0)
        a = g(v, m1, z=z)[1]
        torch.manual_seed(0)
        assert not torch.allclose(a, g(v, m2, z=z)[1])
    g.eval()
    with torch.no_grad():
        a, b, c = g(v, m1, z=z)[1], g(v, m2, z=z)[1], g(v, None, z=z)[1]
    assert torch.equal(a, b) and torch.equal(a, c)
    with torch.no_grad():  # the diagnostic path feeds the true mel even in eval mode
        assert not torch.allclose(g(v, m1, z=z, use_true_mel=True)[1], g(v, m2, z=z, use_true_mel=True)[1])


def test_zero_output_means_generator_sees_zero_code(tiny_config):
    g = RegNet(tiny_config).eval()
    v, _ = _inputs(tiny_config)
    z = torch.zeros(2, tiny_config.model.z_dim)
    with torch.no_grad():
        h = g.encoder(v, z)
        code = torch.zeros(2, v.shape[1], tiny_config.model.aux_dim)
        expected = g.decoder(torch.cat([h, code], 2))
        expected = expected + g.postnet(expected)
        assert torch.allclose(g(v, None, z=z)[1], expected, atol=1e-6)


def test_generate_is_seedable(tiny_config):
    g = RegNet(tiny_config)
    v, _ = _inputs(tiny_config)
    a, b, c = g.generate(v, seed=5), g.generate(v, seed=5), g.generate(v, seed=6)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert g.training  # generate restores the mode it found
    tiny_config.model.test_z = "zero"
    g2 = RegNet(tiny_config)
    assert torch.equal(g2.generate(v), g2.generate(v, seed=9))


def test_woreg_has_no_regularizer(tiny_config):
    tiny_config.model.regularizer = "none"
    g = RegNet(tiny_config)
    assert g.auxiliary is None
    assert g.decoder.model[0].in_channels == 2 * tiny_config.model.lstm_hidden
    v, m = _inputs(tiny_config)
    g.train()
    z = torch.randn(2, tiny_config.model.z_dim)
    _, m2 = _inputs(tiny_config, seed=3)
    with torch.no_grad():
        torch.manual_seed(0)  # same dropout masks in both calls
        a = g(v, m, z=z)[1]
        torch.manual_seed(0)
        assert torch.equal(a, g(v, m2, z=z)[1])


def test_vs_regularizer_sees_visual(tiny_config):
    tiny_config.model.regularizer = "vs"
    g = RegNet(tiny_config)
    assert g.auxiliary.BiLSTM.input_size == tiny_config.data.n_mels + tiny_config.model.visual_dim
    v, m = _inputs(tiny_config)
    v2 = v.clone()
    v2[:, :, :5] += 1.0
    with torch.no_grad():
        assert not torch.allclose(g.auxiliary(m, v), g.auxiliary(m, v2))


def test_sampled_regularizer_holds_one_code_per_s_frames(tiny_config):
    tiny_config.model.aux_sample = 32  # S32: a new code every 8 visual steps
    g = RegNet(tiny_config)
    assert not hasattr(g.auxiliary, "BiLSTM_proj")
    assert g.auxiliary.BiLSTM.hidden_size == tiny_config.model.aux_dim // 2
    v, m = _inputs(tiny_config)
    with torch.no_grad():
        code = g.auxiliary(m, v)
    assert code.shape == (2, tiny_config.data.n_steps, tiny_config.model.aux_dim)
    assert torch.equal(code[:, 0], code[:, 7]) and not torch.equal(code[:, 7], code[:, 8])
    # One code per clip when S covers the clip.
    tiny_config.model.aux_sample = tiny_config.data.mel_frames
    with torch.no_grad():
        whole = RegNet(tiny_config).auxiliary(m, v)
    assert torch.equal(whole[:, 0], whole[:, -1])


@pytest.mark.parametrize("field, value, msg", [
    ("regularizer", "lstm_fancy", "model.regularizer"),
    ("test_regularizer", "drop", "model.test_regularizer"),
    ("test_z", "gauss", "model.test_z"),
    ("aux_sample", 30, "model.aux_sample"),
])
def test_bad_model_config_is_a_user_error(tiny_config, field, value, msg):
    setattr(tiny_config.model, field, value)
    with pytest.raises(UserError, match=msg):
        RegNet(tiny_config)


def test_wrong_visual_dim_is_a_user_error(tiny_config):
    g = RegNet(tiny_config)
    with pytest.raises(UserError, match="model.visual_dim"):
        g.generate(torch.randn(1, tiny_config.data.n_steps, tiny_config.model.visual_dim + 1))


def test_small_preset_builds():
    cfg = preset("small")
    g, d = RegNet(cfg), Discriminator(cfg)
    assert 0 < count_parameters(g) < 20e6 and 0 < count_parameters(d) < 5e6
