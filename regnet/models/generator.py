"""Generator: 2 ConvTranspose1d (x4 in time) + 2 Conv1d give the initial mel I_hat; a 5-layer post-net
adds a residual R_hat (S_hat = I_hat + R_hat)."""

from __future__ import annotations

import torch
from torch import nn

from regnet.config import Config
from regnet.models.layers import conv_bn


class Decoder(nn.Module):
    """[B, T, in_dim] -> I_hat [B, n_mels, 4T]. ``model`` indices match the authors' keys."""

    def __init__(self, in_dim: int, cfg: Config):
        super().__init__()
        c, n_mels = cfg.model.generator_channels, cfg.data.n_mels
        self.model = nn.Sequential(
            nn.ConvTranspose1d(in_dim, c, kernel_size=4, stride=2, padding=1),
            nn.BatchNorm1d(c),
            nn.ReLU(inplace=True),
            nn.Conv1d(c, c, kernel_size=5, padding=2),
            nn.BatchNorm1d(c),
            nn.ReLU(inplace=True),
            nn.ConvTranspose1d(c, n_mels, kernel_size=4, stride=2, padding=1),
            nn.BatchNorm1d(n_mels),
            nn.ReLU(inplace=True),
            nn.Conv1d(n_mels, n_mels, kernel_size=5, padding=2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.transpose(1, 2))


class Postnet(nn.Module):
    """``postnet_layers`` x [Conv1d, BN], tanh between layers, none after the last."""

    def __init__(self, cfg: Config):
        super().__init__()
        m, n_mels = cfg.model, cfg.data.n_mels
        if m.postnet_layers < 2:
            raise ValueError("model.postnet_layers must be at least 2")
        dims = [n_mels] + [m.postnet_channels] * (m.postnet_layers - 1) + [n_mels]
        self.convolutions = nn.ModuleList(
            conv_bn(dims[i], dims[i + 1], m.postnet_kernel) for i in range(m.postnet_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convolutions[:-1]:
            x = torch.tanh(conv(x))
        return self.convolutions[-1](x)
