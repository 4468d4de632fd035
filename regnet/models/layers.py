"""Small building blocks shared by the generator and discriminator."""

from __future__ import annotations

import torch
from torch import nn


class ConvNorm(nn.Module):
    """Conv1d with 'same' padding for odd kernels.

    The convolution lives in ``.conv`` (not inherited) so the state-dict keys read
    ``...<i>.0.conv.weight`` exactly like the authors' checkpoints.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"ConvNorm needs an odd kernel for same padding, got {kernel_size}")
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, padding=(kernel_size - 1) // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def conv_bn(in_channels: int, out_channels: int, kernel_size: int) -> nn.Sequential:
    """[ConvNorm, BatchNorm1d]: index 0 and 1 match the authors' key layout."""
    return nn.Sequential(ConvNorm(in_channels, out_channels, kernel_size), nn.BatchNorm1d(out_channels))


def init_weights(module: nn.Module, std: float) -> None:
    """The authors' init: N(0, std) on every conv/linear weight, zero bias; LSTMs and BatchNorm keep
    PyTorch's defaults (their init function matches class names 'Conv*'/'Linear' and 'BatchNorm2d',
    which no 1-D model contains)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv1d, nn.ConvTranspose1d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
