"""The RegNet generator: visual encoder + audio forwarding regularizer + decoder + post-net.

Training: ``forward(visual, mel)`` with the true mel feeding the regularizer; returns
``(I_hat, S_hat)``. Test (eval mode, or ``mel=None``): the regularizer's contribution is replaced as
``model.test_regularizer`` says — 'zero_output' (paper: S0_hat = G(Ev(V), 0); also the authors'
documented test command, ``aux_zero True``, which zeroes the regularizer's output) or 'zero_input'
(the regularizer runs on an all-zero spectrogram: their code does this only when run with an
explicit ``mode_input vis``) — and z is drawn as
``model.test_z`` says ('random' as the authors do, seedable, or 'zero').

State-dict keys equal the authors' ``Regnet_G`` keys without the ``module.`` prefix that their
DataParallel wrapper adds (their files ``checkpoint_XXXXXX_netG`` hold them under
``optimizer_netG``). Keys seen in github PeihaoChen/regnet model.py:

    encoder.convolutions.{0,1,2}.0.conv.{weight,bias}   Conv1d(2560|2048 -> 2048, k5)
    encoder.convolutions.{0,1,2}.1.{weight,bias,running_mean,running_var,num_batches_tracked}
    encoder.BiLSTM.{weight_ih_l0,weight_hh_l0,bias_ih_l0,bias_hh_l0,..._reverse,..._l1...}
    encoder.BiLSTM_proj.{weight,bias}                   Linear(1024 -> 1024)
    auxiliary.BiLSTM.*                                  LSTM(80 -> D, 2 layers, bi)  ('lstm_last')
    auxiliary.BiLSTM_proj.{weight,bias}                 Linear(D -> D)               ('lstm_last')
    decoder.model.{0,1,3,4,6,7,9}.*                     ConvT, BN, Conv, BN, ConvT, BN, Conv
    postnet.convolutions.{0..4}.0.conv.*, .1.*          Conv1d k5 + BN

and for their ``Regnet_D`` (``checkpoint_XXXXXX_netD``, key ``optimizer_netD``): our
`Discriminator` keys ``feature_conv.{0,1,3}``, ``mel_conv``, ``down_sampling.{0,2,3,5,6,8}``.
So one table maps them: strip ``module.``. Their 'lstm_sample' regularizer (S < 860) has no
``BiLSTM_proj`` and hidden D/2, as ours does with S < mel_frames.
"""

from __future__ import annotations

import torch
from torch import nn

from regnet.config import MEL_FRAMES_PER_STEP, Config
from regnet.errors import UserError
from regnet.models.encoder import VisualEncoder
from regnet.models.generator import Decoder, Postnet
from regnet.models.layers import init_weights
from regnet.models.regularizer import AudioRegularizer

REGULARIZERS = ("lstm", "vs", "none")
TEST_REGULARIZER = ("zero_output", "zero_input")
TEST_Z = ("random", "zero")


def check_model_config(cfg: Config) -> None:
    m = cfg.model
    for name, value, allowed in (("regularizer", m.regularizer, REGULARIZERS),
                                 ("test_regularizer", m.test_regularizer, TEST_REGULARIZER),
                                 ("test_z", m.test_z, TEST_Z)):
        if value not in allowed:
            raise UserError(f"model.{name}: '{value}' is not one of {', '.join(allowed)}")
    if m.regularizer != "none" and m.aux_dim <= 0:
        raise UserError(f"model.aux_dim: must be positive with regularizer '{m.regularizer}' "
                        "(use model.regularizer=none for woREG)")


class RegNet(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        check_model_config(cfg)
        self.cfg = cfg
        m = cfg.model
        self.visual_dim = m.visual_dim
        self.n_mels = cfg.data.n_mels
        self.z_dim = m.z_dim
        self.test_regularizer = m.test_regularizer
        self.test_z = m.test_z
        self.encoder = VisualEncoder(m)
        self.auxiliary = AudioRegularizer(cfg) if m.regularizer != "none" else None
        self.aux_dim = m.aux_dim if self.auxiliary is not None else 0
        self.decoder = Decoder(self.encoder.out_dim + self.aux_dim, cfg)
        self.postnet = Postnet(cfg)
        init_weights(self, m.init_std)

    def _check_visual(self, visual: torch.Tensor) -> None:
        if visual.dim() != 3 or visual.shape[2] != self.visual_dim:
            raise UserError(f"visual features: expected [batch, steps, {self.visual_dim}] "
                            f"(model.visual_dim), got {list(visual.shape)}")

    def sample_z(self, batch: int, device: torch.device, generator: torch.Generator | None = None,
                 test: bool = False) -> torch.Tensor:
        if test and self.test_z == "zero":
            return torch.zeros(batch, self.z_dim, device=device)
        return torch.randn(batch, self.z_dim, device=device, generator=generator)

    def forward(self, visual: torch.Tensor, mel: torch.Tensor | None = None,
                z: torch.Tensor | None = None, use_true_mel: bool | None = None,
                code: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """visual [B, T, Dv], mel [B, n_mels, 4T] or None -> (I_hat, S_hat), each [B, n_mels, 4T].

        The true mel reaches the regularizer only in training mode; in eval mode (or with
        mel=None) the test-time replacement applies, so outputs never depend on the true mel.
        ``use_true_mel=True`` forces the training-time path in eval mode (diagnostics: what the
        regularizer's code carries). ``code [B, T, D]`` replaces the regularizer's output outright
        (diagnostics: another clip's code, `regnet.pipelines.ablation.regularizer_tables`)."""
        self._check_visual(visual)
        batch, steps = visual.shape[:2]
        test = (not self.training if use_true_mel is None else not use_true_mel) or mel is None
        if z is None:
            z = self.sample_z(batch, visual.device, test=test)
        h = self.encoder(visual, z)
        if self.auxiliary is not None:
            if code is not None:
                if tuple(code.shape) != (batch, steps, self.aux_dim):
                    raise UserError(f"code: expected [{batch}, {steps}, {self.aux_dim}], got {list(code.shape)}")
            elif not test:
                if mel.shape[1:] != (self.n_mels, MEL_FRAMES_PER_STEP * steps):
                    raise UserError(f"mel: expected [batch, {self.n_mels}, {MEL_FRAMES_PER_STEP * steps}] for {steps} "
                                    f"visual steps, got {list(mel.shape)}")
                code = self.auxiliary(mel, visual)
            elif self.test_regularizer == "zero_input":
                code = self.auxiliary(visual.new_zeros(batch, self.n_mels, MEL_FRAMES_PER_STEP * steps), visual)
            else:
                code = h.new_zeros(batch, steps, self.aux_dim)
            h = torch.cat([h, code[:, :steps].to(h.dtype)], dim=2)
        mel_init = self.decoder(h)
        mel_post = mel_init + self.postnet(mel_init)
        return mel_init, mel_post

    @torch.no_grad()
    def generate(self, visual: torch.Tensor, seed: int | None = None) -> torch.Tensor:
        """S0_hat [B, n_mels, 4T] from visual features alone (eval mode; seedable z)."""
        was_training = self.training
        self.eval()
        try:
            gen = None
            if seed is not None:
                gen = torch.Generator(device=visual.device).manual_seed(int(seed))
            z = self.sample_z(visual.shape[0], visual.device, generator=gen, test=True)
            return self.forward(visual, None, z=z)[1]
        finally:
            self.train(was_training)


def count_parameters(module: nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())
