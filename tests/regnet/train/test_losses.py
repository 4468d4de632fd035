"""Eq. 7 as printed (beta on the GAN terms) beside the authors' code form, and woGAN (§V-I)."""

from __future__ import annotations

import math

import pytest
import torch

from regnet.train.losses import discriminator_loss, generator_loss
from regnet.train.trainer import Trainer


def _bce(p, y):
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


def test_eq7_puts_beta_on_the_gan_terms(tiny_config):
    t = tiny_config.train
    t.alpha, t.beta, t.loss_form = 2.0, 100.0, "eq7"
    logit = 0.3
    logits = torch.full((2, 1, 5), logit)
    target = torch.zeros(2, 80, 8)
    init, post = torch.full_like(target, 0.1), torch.full_like(target, 0.2)
    p = 1 / (1 + math.exp(-logit))
    total, parts = generator_loss(logits, init, post, target, t)
    assert total.item() == pytest.approx(100 * _bce(p, 1) + 2 * 0.01 + 0.04, rel=1e-5)
    d = discriminator_loss(logits, torch.full((2, 1, 5), -logit), t)
    assert d.item() == pytest.approx(100 * 0.5 * (_bce(p, 1) + _bce(1 - p, 0)), rel=1e-5)
    t.loss_form = "code"  # the authors' code: beta on the reconstruction, D unscaled
    assert generator_loss(logits, init, post, target, t)[0].item() == pytest.approx(
        _bce(p, 1) + 100 * (2 * 0.01 + 0.04), rel=1e-5)
    assert discriminator_loss(logits, torch.full((2, 1, 5), -logit), t).item() == pytest.approx(
        0.5 * (_bce(p, 1) + _bce(1 - p, 0)), rel=1e-5)


def test_wogan_trains_without_the_discriminator(tiny_config):
    cfg = tiny_config
    cfg.model.visual_dim = 16
    cfg.train.adversarial = False
    tr = Trainer(cfg)
    before = {k: v.clone() for k, v in tr.discriminator.state_dict().items()}
    g = torch.Generator().manual_seed(0)
    v = torch.randn(2, cfg.data.n_steps, 16, generator=g)
    m = torch.rand(2, cfg.data.n_mels, cfg.data.mel_frames, generator=g)
    out = tr.train_step(v, m)
    assert "d" not in out and out["g_adv"] == 0.0
    assert out["g"] == pytest.approx(cfg.train.beta * (cfg.train.alpha * out["l2_init"] + out["l2_post"]), rel=1e-5)
    assert all(torch.equal(before[k], t) for k, t in tr.discriminator.state_dict().items())
