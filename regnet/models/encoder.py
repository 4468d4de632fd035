"""Visual encoder E_v: features (+ noise z) -> 3 x [Conv1d, BN, ReLU, dropout] -> 2-layer BiLSTM -> Linear."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from regnet.config import ModelConfig
from regnet.models.layers import conv_bn


class VisualEncoder(nn.Module):
    def __init__(self, m: ModelConfig):
        super().__init__()
        self.z_dim = m.z_dim
        self.dropout = m.encoder_dropout
        dims = [m.visual_dim + m.z_dim] + [m.encoder_channels] * 3
        self.convolutions = nn.ModuleList(
            conv_bn(dims[i], dims[i + 1], m.encoder_kernel) for i in range(3))
        self.BiLSTM = nn.LSTM(m.encoder_channels, m.lstm_hidden, num_layers=2, batch_first=True,
                              bidirectional=True)
        self.BiLSTM_proj = nn.Linear(2 * m.lstm_hidden, 2 * m.lstm_hidden)

    @property
    def out_dim(self) -> int:
        return self.BiLSTM_proj.out_features

    def forward(self, visual: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """visual [B, T, Dv], z [B, z_dim] -> [B, T, 2 * lstm_hidden]."""
        x = visual.transpose(1, 2)
        if self.z_dim:
            x = torch.cat([x, z.to(x.dtype)[:, :, None].expand(-1, -1, x.shape[2])], dim=1)
        for conv in self.convolutions:
            x = F.dropout(F.relu(conv(x)), self.dropout, self.training)
        x, _ = self.BiLSTM(x.transpose(1, 2))
        return self.BiLSTM_proj(x)
