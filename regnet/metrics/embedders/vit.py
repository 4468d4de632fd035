"""Transformer layers the released embedders share (PaSST, Synchformer's MotionFormer), with the
parameter names timm gives them, which are the keys of the authors' checkpoints."""

from __future__ import annotations

import torch.nn as nn


class Mlp(nn.Module):
    """timm's ``Mlp``: Linear ``fc1`` → GELU → Linear ``fc2``."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))
