"""The conditioning upsampler of the authors' WaveNet vocoders (r9y9 wavenet_vocoder, 2018).

The released ``*_ema.pth`` files predate r9y9's Stretch2d + Conv2d upsampler: per scale s they use
ConvTranspose2d(1, 1, (3, s), stride (1, s), padding (1, 0)) with weight norm and a bias, each
followed by a ReLU (r9y9: "assuming [0, 1] scaled features"). The kernel width equals the stride,
so every output sample depends on one mel frame and its two neighbouring bins only. Selected by
``vocoder.upsample_net = 'transposed'``; parameter keys ``upsample_net.up_layers.{0,2,4,6}``.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

# Their builder's freq_axis_kernel_size; a checkpoint with another width fails the shape check.
FREQ_KERNEL = 3


class TransposedUpsampleNet(nn.Module):
    def __init__(self, scales: tuple[int, ...], wn: bool = True):
        super().__init__()
        layers: list[nn.Module] = []
        for s in scales:
            conv = nn.ConvTranspose2d(1, 1, (FREQ_KERNEL, s), stride=(1, s), padding=((FREQ_KERNEL - 1) // 2, 0))
            # r9y9's init: each output starts as the mean over the three bins it reads.
            nn.init.constant_(conv.weight, 1.0 / FREQ_KERNEL)
            nn.init.zeros_(conv.bias)
            layers += [weight_norm(conv) if wn else conv, nn.ReLU()]
        self.up_layers = nn.ModuleList(layers)
        self.scale = int(math.prod(scales))
        # No temporal overlap between frames; one frame each side keeps windowed callers simple.
        self.context_frames = 1

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        """``c [B, cin, M]`` -> ``[B, cin, M * scale]``."""
        x = c.unsqueeze(1)
        for f in self.up_layers:
            x = f(x)
        return x.squeeze(1)
