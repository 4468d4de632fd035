"""The training step: overfits a fixed batch, losses as documented, speed options match the plain step."""

from __future__ import annotations

import pytest
import torch

from regnet.config import preset
from regnet.errors import UserError
from regnet.train.losses import discriminator_loss, generator_loss
from regnet.train.trainer import SpeedOptions, Trainer, cpu_bf16_supported, lr_factor


def _batch(cfg, batch=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(batch, cfg.data.n_steps, cfg.model.visual_dim, generator=g)
    m = torch.rand(batch, cfg.data.n_mels, cfg.data.mel_frames, generator=g)
    return v, m


def test_fixed_batch_overfits(tiny_config):
    tiny_config.model.visual_dim = 32
    # The authors' N(0, 0.02) init starts the output near 0; a larger lr gets it moving in 100 steps.
    tiny_config.train.lr = 1e-2
    tr = Trainer(tiny_config)
    v, m = _batch(tiny_config)
    first = tr.train_step(v, m)
    for _ in range(100):
        last = tr.train_step(v, m)
    assert tr.step == 101
    assert last["l2_post"] < first["l2_post"] / 10
    assert last["l2_init"] < first["l2_init"] / 3


def test_loss_forms_and_weights(tiny_config):
    t = tiny_config.train
    logits = torch.zeros(2, 1, 5)  # p = 0.5 everywhere: BCE = log 2
    target = torch.zeros(2, 80, 8)
    init, post = torch.full_like(target, 0.1), torch.full_like(target, 0.2)
    t.alpha, t.beta = 2.0, 100.0
    total, parts = generator_loss(logits, init, post, target, t)
    ln2 = torch.log(torch.tensor(2.0)).item()
    assert parts["l2_init"].item() == pytest.approx(0.01) and parts["l2_post"].item() == pytest.approx(0.04)
    assert total.item() == pytest.approx(ln2 + 100 * (2 * 0.01 + 0.04), rel=1e-5)
    t.loss_form = "paper"
    assert generator_loss(logits, init, post, target, t)[0].item() == pytest.approx(
        2 * 0.01 + 0.04 + ln2 / 100, rel=1e-5)
    assert discriminator_loss(logits, logits).item() == pytest.approx(ln2, rel=1e-5)
    t.loss_form = "eq8"  # ('eq7' is a form now: Eq. 7 as printed, tests/test_train_losses.py)
    with pytest.raises(UserError, match="train.loss_form"):
        generator_loss(logits, init, post, target, t)


def test_lr_schedule_decays_linearly_after_start():
    cfg = preset("tiny")
    cfg.train.epochs, cfg.train.lr_decay_start_epoch = 10, 4
    f = [lr_factor(e, cfg) for e in range(11)]
    assert f[:5] == [1.0] * 5 and f[5] < 1.0 and all(a > b for a, b in zip(f[4:], f[5:]))
    assert f[10] == pytest.approx(1 - 6 / 7)


def test_speed_options_default_off_on_cpu(tiny_config):
    s = SpeedOptions.resolve(tiny_config, torch.device("cpu"))
    assert s == SpeedOptions(amp=False, compile=False, fused_adam=False)
    assert SpeedOptions.resolve(tiny_config, torch.device("cuda")).amp is True


def _run_steps(cfg, device, n=3, **speed):
    for k, v in speed.items():
        setattr(cfg.train, k, v)
    tr = Trainer(cfg, device)
    v, m = _batch(cfg)
    torch.manual_seed(11)  # same z and dropout stream in both runs
    return [tr.train_step(v, m) for _ in range(n)]


def test_cpu_amp_without_bf16_is_a_clear_error(tiny_config, monkeypatch):
    import regnet.train.trainer as trainer

    monkeypatch.setattr(trainer, "cpu_bf16_supported", lambda: False)
    tiny_config.train.amp = True
    with pytest.raises(UserError, match="train.amp"):
        Trainer(tiny_config, "cpu")


@pytest.mark.skipif(not cpu_bf16_supported(), reason="this CPU has no bf16 support in oneDNN")
def test_bf16_autocast_step_matches_fp32_on_cpu(tiny_config):
    tiny_config.model.visual_dim = 32
    plain = _run_steps(tiny_config.copy(), "cpu", amp=False)
    fast = _run_steps(tiny_config.copy(), "cpu", amp=True)
    for a, b in zip(plain, fast):
        # bf16 keeps ~3 significant digits; losses are taken in fp32.
        for k in ("d", "g", "l2_post", "l2_init"):
            assert b[k] == pytest.approx(a[k], rel=3e-2), k


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.cuda
@cuda
def test_cuda_speed_options_match_plain_step(tiny_config):
    tiny_config.model.visual_dim = 32
    plain = _run_steps(tiny_config.copy(), "cuda", amp=False, fused_adam=False, cudnn_benchmark=False)
    fast = _run_steps(tiny_config.copy(), "cuda", amp=True, fused_adam=True, cudnn_benchmark=True)
    for a, b in zip(plain, fast):
        for k in ("d", "g", "l2_post"):
            assert b[k] == pytest.approx(a[k], rel=3e-2), k


@pytest.mark.cuda
@cuda
def test_cuda_compiled_step_matches_plain_step(tiny_config):
    tiny_config.model.visual_dim = 32
    plain = _run_steps(tiny_config.copy(), "cuda", amp=False)
    fast = _run_steps(tiny_config.copy(), "cuda", amp=True, compile=True)
    for a, b in zip(plain, fast):
        assert b["l2_post"] == pytest.approx(a["l2_post"], rel=3e-2)
