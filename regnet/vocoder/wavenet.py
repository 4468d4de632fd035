"""Mel-conditioned WaveNet with a discretised mixture-of-logistics output (Oord et al. 2016;
r9y9 wavenet_vocoder, which the RegNet authors used; sizes in docs/paper.md).

Parameter names follow r9y9's ``WaveNet`` so the authors' ``*_ema.pth`` checkpoints map with one
table. r9y9's layout as we read it (``scalar_input=True``, ``gin_channels=-1``, weight norm on;
each weight-normed conv stores ``weight_g`` [out, 1, 1...] and ``weight_v`` [same as weight]):

====================================================  ==========================================
r9y9 key                                              shape (paper size: R=512, G=512, S=256)
====================================================  ==========================================
``first_conv.{weight_g,weight_v,bias}``               v: [R, 1, 1]
``conv_layers.N.conv.{weight_g,weight_v,bias}``       v: [G, R, k]  (causal, dilation 2**(N % 6))
``conv_layers.N.conv1x1c.{weight_g,weight_v,bias}``   v: [G, cin, 1]
``conv_layers.N.conv1x1_out.{weight_g,...}``          v: [R, G/2, 1]
``conv_layers.N.conv1x1_skip.{weight_g,...}``         v: [S, G/2, 1]
``last_conv_layers.1.{weight_g,weight_v,bias}``       v: [S, S, 1]  (0 and 2 are ReLU)
``last_conv_layers.3.{weight_g,weight_v,bias}``       v: [3 * n_mix, S, 1]  ([logits|means|log_scales])
``upsample_net.conv_in.weight``                       [cin, cin, 2 * cin_pad + 1], no bias
``upsample_net.upsample.up_layers.{1,3,5,7}.*``       Conv2d(1, 1, (1, 2s + 1)), no bias, weight norm;
                                                      even indices are parameter-free Stretch2d(s)
``upsample_conv.{0,2,4,6}.*`` (2018, authors' files)  ConvTranspose2d(1, 1, (3, s), stride (1, s)),
                                                      bias, weight norm; odd indices are ReLU
====================================================  ==========================================

``vocoder.upsample_net`` picks the upsampler: 'stretch' (r9y9 today, `UpsampleNet`) or
'transposed' (the 2018 one the authors' ``*_ema.pth`` files carry, `regnet.vocoder.upsample`);
`regnet.authors.layout.wavenet_table` is the key table for the authors' files.

Here weight norm uses ``torch.nn.utils.parametrizations.weight_norm``, so ``X.weight_g`` /
``X.weight_v`` become ``X.parametrizations.weight.original0`` / ``original1``; with
``weight_norm=False`` they are plain ``X.weight``. The upsampler's convs sit at
``upsample_net.up_layers.{1,3,...}`` (no inner ``upsample.`` level) and ``conv_in`` has kernel 1
(r9y9's ``cin_pad=0``). r9y9 conditions output t (which predicts x[t+1]) on c[t]; here output t
predicts x[t] from x[<t] and c[t] (one sample apart: immaterial for loading weights).

The gate conv's output is split in two halves (tanh | sigmoid), so ``conv1x1_out`` and
``conv1x1_skip`` read G/2 channels; residuals are scaled by sqrt(0.5) as r9y9 does.

How the layers' skip outputs h_1..h_L combine is ``vocoder.skip_rule``, a property of a checkpoint
(`add_skip` / `finish_skips`, shared by the full forward and every sampler):

- 'sum-sqrt' (what this project trains, later r9y9): ``sqrt(1/L) * (h_1 + ... + h_L)``.
- 'r9y9-2092a64' (the r9y9 commit the RegNet authors bundle, so their ``*_ema.pth`` files):
  ``skips = h_1``, then ``skips = (skips + h_i) * sqrt(0.5)`` for each later layer, nothing after;
  h_1 and h_2 end up weighted (sqrt 1/2)^(L-1), h_i (sqrt 1/2)^(L-i+1).

The recurrence is computed as written rather than folded into ``conv1x1_skip`` on import: the
imported weights then stay the file's tensors, so export gives them back bit for bit (a fold
multiplied in and divided out again is not exact in floating point), and a checkpoint trained
here keeps its 'sum-sqrt' audio untouched.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm as _weight_norm

from regnet.config import SKIP_RULES, VocoderConfig


def _conv1d(cin: int, cout: int, kernel: int, dilation: int, dropout: float, wn: bool,
            bias: bool = True) -> nn.Module:
    m = nn.Conv1d(cin, cout, kernel, dilation=dilation, bias=bias)
    # r9y9's init: variance scaled by fan-in and the keep probability, zero bias.
    nn.init.normal_(m.weight, 0.0, math.sqrt((1.0 - dropout) / (kernel * cin)))
    if bias:
        nn.init.zeros_(m.bias)
    return _weight_norm(m) if wn else m


def receptive_field(cfg: VocoderConfig) -> int:
    return (cfg.kernel_size - 1) * sum(dilations(cfg)) + 1


def dilations(cfg: VocoderConfig) -> list[int]:
    per_stack = cfg.layers // cfg.stacks
    return [2 ** (i % per_stack) for i in range(cfg.layers)]


SUM_SQRT, R9Y9_2092A64 = SKIP_RULES
_SQRT_HALF = math.sqrt(0.5)


def check_skip_rule(rule: str) -> str:
    if rule not in SKIP_RULES:
        raise ValueError(f"vocoder.skip_rule must be one of {', '.join(SKIP_RULES)}, got {rule!r}")
    return rule


def add_skip(skips: torch.Tensor | float | None, h: torch.Tensor, i: int, rule: str) -> torch.Tensor:
    """Fold layer ``i``'s (0-based) skip output ``h`` into the running ``skips`` (None/0 before layer 0)."""
    if i == 0 or skips is None:
        return h
    if rule == R9Y9_2092A64:
        return (skips + h) * _SQRT_HALF
    return skips + h


def finish_skips(skips: torch.Tensor, n_layers: int, rule: str) -> torch.Tensor:
    """What the output head reads: the running skips after the last layer."""
    if rule == R9Y9_2092A64:
        return skips
    return skips * math.sqrt(1.0 / n_layers)


class Stretch(nn.Module):
    """Nearest-neighbour repeat along time (r9y9's Stretch2d with freq scale 1)."""

    def __init__(self, scale: int):
        super().__init__()
        self.scale = scale

    def forward(self, c: torch.Tensor) -> torch.Tensor:  # [B, 1, C, T]
        return torch.repeat_interleave(c, self.scale, dim=-1)


class UpsampleNet(nn.Module):
    """Mel frames -> one conditioning vector per sample: per scale, stretch then a learned
    (2s+1)-tap smoothing along time, shared across mel bins. Product of scales = hop length."""

    def __init__(self, scales: tuple[int, ...], cin: int, wn: bool):
        super().__init__()
        self.conv_in = nn.Conv1d(cin, cin, 1, bias=False)
        with torch.no_grad():
            # Start as identity so an untrained net passes the mel through unchanged.
            self.conv_in.weight.copy_(torch.eye(cin).unsqueeze(-1))
        layers: list[nn.Module] = []
        for s in scales:
            conv = nn.Conv2d(1, 1, (1, 2 * s + 1), padding=(0, s), bias=False)
            nn.init.constant_(conv.weight, 1.0 / (2 * s + 1))  # start as a moving average
            layers += [Stretch(s), _weight_norm(conv) if wn else conv]
        self.up_layers = nn.ModuleList(layers)
        self.scale = int(math.prod(scales))
        # Frames of context one output frame depends on, each side (for windowed upsampling).
        self.context_frames = math.ceil(sum(s / math.prod(scales[: i + 1]) for i, s in enumerate(scales))) + 1

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        """``c [B, cin, M]`` -> ``[B, cin, M * scale]``."""
        x = self.conv_in(c).unsqueeze(1)
        for f in self.up_layers:
            x = f(x)
        return x.squeeze(1)


def make_upsampler(cfg: VocoderConfig) -> nn.Module:
    """'stretch' (r9y9 today) or 'transposed' (the 2018 upsampler of the authors' released vocoders)."""
    if cfg.upsample_net == "stretch":
        return UpsampleNet(tuple(cfg.upsample_scales), cfg.cin_channels, cfg.weight_norm)
    if cfg.upsample_net == "transposed":
        from regnet.vocoder.upsample import TransposedUpsampleNet

        return TransposedUpsampleNet(tuple(cfg.upsample_scales), cfg.weight_norm)
    raise ValueError(f"vocoder.upsample_net must be 'stretch' or 'transposed', got {cfg.upsample_net!r}")


class ResidualConv1dGLU(nn.Module):
    def __init__(self, cfg: VocoderConfig, dilation: int):
        super().__init__()
        r, g, s, k = cfg.residual_channels, cfg.gate_channels, cfg.skip_channels, cfg.kernel_size
        wn, p = cfg.weight_norm, cfg.dropout
        self.dilation = dilation
        self.dropout = p
        self.conv = _conv1d(r, g, k, dilation, p, wn)
        self.conv1x1c = _conv1d(cfg.cin_channels, g, 1, 1, 0.0, wn)
        self.conv1x1_out = _conv1d(g // 2, r, 1, 1, 0.0, wn)
        self.conv1x1_skip = _conv1d(g // 2, s, 1, 1, 0.0, wn)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        residual = x
        x = F.dropout(x, p=self.dropout, training=self.training)
        pad = (self.conv.kernel_size[0] - 1) * self.dilation
        h = self.conv(F.pad(x, (pad, 0))) + self.conv1x1c(c)  # left pad only: causal
        a, b = h.chunk(2, dim=1)
        z = torch.tanh(a) * torch.sigmoid(b)
        return (self.conv1x1_out(z) + residual) * math.sqrt(0.5), self.conv1x1_skip(z)


class WaveNet(nn.Module):
    """``forward(x_prev [B, 1, T], mel [B, cin, M]) -> mixture params [B, 3 * n_mix, T]``.

    ``x_prev`` is the audio shifted right by one sample (see `shift_right`): output t models x[t].
    """

    def __init__(self, cfg: VocoderConfig):
        super().__init__()
        if cfg.layers % cfg.stacks:
            raise ValueError(f"vocoder.layers ({cfg.layers}) must be a multiple of vocoder.stacks ({cfg.stacks})")
        if cfg.gate_channels % 2:
            raise ValueError(f"vocoder.gate_channels ({cfg.gate_channels}) must be even")
        self.cfg = cfg
        self.skip_rule = check_skip_rule(cfg.skip_rule)
        wn = cfg.weight_norm
        self.first_conv = _conv1d(1, cfg.residual_channels, 1, 1, 0.0, wn)
        self.conv_layers = nn.ModuleList(ResidualConv1dGLU(cfg, d) for d in dilations(cfg))
        self.last_conv_layers = nn.ModuleList([
            nn.ReLU(), _conv1d(cfg.skip_channels, cfg.skip_channels, 1, 1, 0.0, wn),
            nn.ReLU(), _conv1d(cfg.skip_channels, 3 * cfg.n_mix, 1, 1, 0.0, wn),
        ])
        self.upsample_net = make_upsampler(cfg)
        self.receptive_field = receptive_field(cfg)

    @property
    def hop(self) -> int:
        return self.upsample_net.scale

    def forward(self, x_prev: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
        c = self.upsample_net(mel)
        return self.forward_upsampled(x_prev, c[:, :, : x_prev.shape[-1]])

    def forward_upsampled(self, x_prev: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        if x_prev.dim() == 2:
            x_prev = x_prev.unsqueeze(1)
        x = self.first_conv(x_prev)
        skips = None
        for i, layer in enumerate(self.conv_layers):
            x, s = layer(x, c)
            skips = add_skip(skips, s, i, self.skip_rule)
        y = finish_skips(skips, len(self.conv_layers), self.skip_rule)
        for f in self.last_conv_layers:
            y = f(y)
        return y


def shift_right(audio: torch.Tensor) -> torch.Tensor:
    """``[B, T]`` -> ``[B, 1, T]`` with a zero first: the network input that predicts ``audio``."""
    return F.pad(audio, (1, 0))[:, :-1].unsqueeze(1)


def effective_weight(module: nn.Module) -> torch.Tensor:
    """The weight a conv actually applies (weight norm resolved)."""
    return module.weight.detach()
