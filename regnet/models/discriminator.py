"""Conditional PatchGAN discriminator over (visual features, mel).

The visual branch upsamples the features x4 in time to the mel's length (two ConvTranspose1d), the
mel branch is a 1x1 ConvTranspose1d; both are concatenated and scored by four Conv1d layers, one
score per patch (receptive field 34 mel frames). Key names (``feature_conv``, ``mel_conv``,
``down_sampling``) and Sequential indices follow the authors' ``Regnet_D``.
"""

from __future__ import annotations

import torch
from torch import nn

from regnet.config import Config
from regnet.models.layers import init_weights


class Discriminator(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        m = cfg.model
        fc, bc = m.disc_feature_channels, m.disc_branch_channels
        c1, c2, c3 = m.disc_channels
        self.feature_conv = nn.Sequential(
            nn.ConvTranspose1d(m.visual_dim, fc, kernel_size=4, stride=2, padding=1),
            nn.BatchNorm1d(fc),
            nn.LeakyReLU(0.2, inplace=True),
            nn.ConvTranspose1d(fc, bc, kernel_size=4, stride=2, padding=1),
        )
        self.mel_conv = nn.ConvTranspose1d(cfg.data.n_mels, bc, kernel_size=1)
        self.down_sampling = nn.Sequential(
            nn.Conv1d(2 * bc, c1, kernel_size=4, stride=2, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv1d(c1, c2, kernel_size=4, stride=2, padding=1),
            nn.BatchNorm1d(c2),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv1d(c2, c3, kernel_size=4, stride=1, padding=1),
            nn.BatchNorm1d(c3),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv1d(c3, 1, kernel_size=4, stride=1, padding=1),
        )
        init_weights(self, m.init_std)

    def logits(self, visual: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
        """visual [B, T, Dv], mel [B, n_mels, M] -> patch logits [B, 1, P].

        Losses use these with BCE-with-logits: the same value as the authors' sigmoid + BCE, but
        safe under autocast and free of log(0)."""
        v = self.feature_conv(visual.transpose(1, 2))
        a = self.mel_conv(mel)
        return self.down_sampling(torch.cat([v, a], dim=1))

    def forward(self, visual: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
        """Patch probabilities that the mel is real for this video, [B, 1, P]."""
        return torch.sigmoid(self.logits(visual, mel))
