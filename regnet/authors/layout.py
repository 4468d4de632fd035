"""The authors' checkpoint layouts, written down as data: one table per kind.

Read from github PeihaoChen/regnet (``model.py``: ``Regnet_G``, ``Regnet_D``, ``save_checkpoint``;
``test.py``: ``build_wavenet``; ``config/dog_opts.yml``) and r9y9/wavenet_vocoder at the commit their
README pins (2092a64: ``builder.wavenet(upsample_scales=..., freq_axis_kernel_size=3,
weight_normalization=True)``).

Files:

- RegNet: ``checkpoint_041000_netG`` / ``checkpoint_041000_netD``, each ``torch.save({"iteration",
  "learning_rate", "optimizer_netG"|"optimizer_netD": state_dict})``; the state dict is taken from
  ``net.module`` (no ``module.`` prefix; we strip one if present). PyTorch 1.2 era, so BatchNorm
  carries ``num_batches_tracked``.
- WaveNet: ``<class>_checkpoint_step000200000_ema.pth`` = ``{"state_dict", "optimizer",
  "global_step", "global_epoch"}``; every conv is weight-normalised (``weight_g`` = per-output-channel
  norm ``[out, 1, 1]``, ``weight_v`` = direction, ``bias``). The conditioning upsampler of that
  era is ``upsample_conv``: per scale s a ConvTranspose2d(1, 1, (3, s), stride (1, s),
  padding (1, 0)) followed by a ReLU, so its parameters sit at indices 0, 2, 4, 6.

Each table is a list of `Tensor(source key, target key, shape)`; shapes follow from a small dims
record that `checkpoints` infers from the file. Import and export both walk the same table, so a
key is consumed exactly once in each direction.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tensor:
    source: str  # key in the authors' state dict
    target: str  # key in our module's state dict
    shape: tuple[int, ...]


# -- RegNet ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RegNetDims:
    """Sizes the generator's and discriminator's tensors depend on (authors' names in comments)."""

    visual_dim: int  # visual_dim: 2048
    z_dim: int  # random_z_dim: 512
    encoder_channels: int  # encoder_embedding_dim: 2048
    encoder_kernel: int  # encoder_kernel_size: 5
    lstm_hidden: int  # encoder_embedding_dim / 4: 512
    aux_kind: str  # 'last' (auxiliary_type lstm_last) | 'sample' (lstm_sample) | 'none' (woREG, ours)
    aux_dim: int  # auxiliary_dim D: 32 in dog_opts.yml
    aux_input: int  # n_mels, or n_mels + visual_dim for our VS variant
    generator_channels: int  # decoder_conv_dim / 2: 512
    n_mels: int  # 80
    postnet_channels: int  # postnet_embedding_dim: 512
    postnet_kernel: int  # 5
    postnet_layers: int  # 5
    disc_feature_channels: int  # decoder_conv_dim: 1024
    disc_branch_channels: int  # 64 (hard-coded in Regnet_D)
    disc_channels: tuple[int, int, int]  # (256, 512, 1024) (hard-coded)

    @property
    def encoder_out(self) -> int:
        return 2 * self.lstm_hidden

    @property
    def aux_hidden(self) -> int:
        return self.aux_dim if self.aux_kind == "last" else self.aux_dim // 2


def _same(key: str, shape: tuple[int, ...]) -> Tensor:
    # The model code keeps the authors' key names, so source and target agree here.
    return Tensor(key, key, shape)


def _conv(prefix: str, out: int, inp: int, k: int, transposed: bool = False) -> list[Tensor]:
    w = (inp, out, k) if transposed else (out, inp, k)
    return [_same(f"{prefix}.weight", w), _same(f"{prefix}.bias", (out,))]


def _bn(prefix: str, c: int) -> list[Tensor]:
    return [_same(f"{prefix}.{n}", (c,)) for n in ("weight", "bias", "running_mean", "running_var")] + [
        _same(f"{prefix}.num_batches_tracked", ())]


def _bilstm(prefix: str, inp: int, hidden: int, layers: int = 2) -> list[Tensor]:
    out = []
    for layer in range(layers):
        width = inp if layer == 0 else 2 * hidden
        for sfx in ("", "_reverse"):
            out += [_same(f"{prefix}.weight_ih_l{layer}{sfx}", (4 * hidden, width)),
                    _same(f"{prefix}.weight_hh_l{layer}{sfx}", (4 * hidden, hidden)),
                    _same(f"{prefix}.bias_ih_l{layer}{sfx}", (4 * hidden,)),
                    _same(f"{prefix}.bias_hh_l{layer}{sfx}", (4 * hidden,))]
    return out


def regnet_g_table(d: RegNetDims) -> list[Tensor]:
    """``Regnet_G`` (their netG) == our `regnet.models.RegNet`."""
    t: list[Tensor] = []
    ins = [d.visual_dim + d.z_dim] + [d.encoder_channels] * 2
    for i, inp in enumerate(ins):
        t += _conv(f"encoder.convolutions.{i}.0.conv", d.encoder_channels, inp, d.encoder_kernel)
        t += _bn(f"encoder.convolutions.{i}.1", d.encoder_channels)
    t += _bilstm("encoder.BiLSTM", d.encoder_channels, d.lstm_hidden)
    t += [_same("encoder.BiLSTM_proj.weight", (d.encoder_out, d.encoder_out)),
          _same("encoder.BiLSTM_proj.bias", (d.encoder_out,))]
    if d.aux_kind != "none":
        t += _bilstm("auxiliary.BiLSTM", d.aux_input, d.aux_hidden)
    if d.aux_kind == "last":
        t += [_same("auxiliary.BiLSTM_proj.weight", (d.aux_dim, d.aux_dim)),
              _same("auxiliary.BiLSTM_proj.bias", (d.aux_dim,))]
    aux = d.aux_dim if d.aux_kind != "none" else 0
    g, m = d.generator_channels, d.n_mels
    t += _conv("decoder.model.0", g, d.encoder_out + aux, 4, transposed=True) + _bn("decoder.model.1", g)
    t += _conv("decoder.model.3", g, g, 5) + _bn("decoder.model.4", g)
    t += _conv("decoder.model.6", m, g, 4, transposed=True) + _bn("decoder.model.7", m)
    t += _conv("decoder.model.9", m, m, 5)
    dims = [m] + [d.postnet_channels] * (d.postnet_layers - 1) + [m]
    for i in range(d.postnet_layers):
        t += _conv(f"postnet.convolutions.{i}.0.conv", dims[i + 1], dims[i], d.postnet_kernel)
        t += _bn(f"postnet.convolutions.{i}.1", dims[i + 1])
    return t


def regnet_d_table(d: RegNetDims) -> list[Tensor]:
    """``Regnet_D`` (their netD) == our `regnet.models.Discriminator`."""
    fc, bc = d.disc_feature_channels, d.disc_branch_channels
    c1, c2, c3 = d.disc_channels
    return (_conv("feature_conv.0", fc, d.visual_dim, 4, transposed=True) + _bn("feature_conv.1", fc)
            + _conv("feature_conv.3", bc, fc, 4, transposed=True)
            + _conv("mel_conv", bc, d.n_mels, 1, transposed=True)
            + _conv("down_sampling.0", c1, 2 * bc, 4)
            + _conv("down_sampling.2", c2, c1, 4) + _bn("down_sampling.3", c2)
            + _conv("down_sampling.5", c3, c2, 4) + _bn("down_sampling.6", c3)
            + _conv("down_sampling.8", 1, c3, 4))


# -- WaveNet (r9y9) ----------------------------------------------------------------------------
@dataclass(frozen=True)
class WaveNetDims:
    layers: int  # 24
    residual_channels: int  # 512
    gate_channels: int  # 512
    skip_channels: int  # 256
    kernel_size: int  # 3
    cin_channels: int  # 80
    out_channels: int  # 30 = 10 logistics x 3
    upsample_scales: tuple[int, ...]  # (4, 4, 4, 4)
    freq_axis_kernel: int  # 3


# Our WaveNet (regnet.vocoder.wavenet) keeps r9y9's module names; it weight-normalises through
# torch.nn.utils.parametrizations, so r9y9's weight_g / weight_v live under these names.
WN_G = "parametrizations.weight.original0"
WN_V = "parametrizations.weight.original1"
# Their upsample_conv.{0,2,4,6} (ConvTranspose2d, ReLU between) is our transposed upsampler.
UPSAMPLE_TARGET = "upsample_net.up_layers"


def _wn(name: str, out: int, inp: int, k: int) -> list[Tensor]:
    return [Tensor(f"{name}.weight_g", f"{name}.{WN_G}", (out, 1, 1)),
            Tensor(f"{name}.weight_v", f"{name}.{WN_V}", (out, inp, k)),
            Tensor(f"{name}.bias", f"{name}.bias", (out,))]


def wavenet_table(d: WaveNetDims) -> list[Tensor]:
    """r9y9 ``WaveNet`` (scalar input, mixture-of-logistics output) == our vocoder's WaveNet with
    ``vocoder.upsample_net = 'transposed'``."""
    r, g, s, half = d.residual_channels, d.gate_channels, d.skip_channels, d.gate_channels // 2
    t = _wn("first_conv", r, 1, 1)
    for i in range(d.layers):
        # conv1x1c has a bias in this era of r9y9 (later versions dropped it).
        t += (_wn(f"conv_layers.{i}.conv", g, r, d.kernel_size)
              + _wn(f"conv_layers.{i}.conv1x1c", g, d.cin_channels, 1)
              + _wn(f"conv_layers.{i}.conv1x1_out", r, half, 1)
              + _wn(f"conv_layers.{i}.conv1x1_skip", s, half, 1))
    t += _wn("last_conv_layers.1", s, s, 1) + _wn("last_conv_layers.3", d.out_channels, s, 1)
    for j, scale in enumerate(d.upsample_scales):
        # ConvTranspose2d(1, 1, (freq, s)): weight [in=1, out=1, freq, s]; weight_g over dim 0.
        src, dst = f"upsample_conv.{2 * j}", f"{UPSAMPLE_TARGET}.{2 * j}"
        t += [Tensor(f"{src}.weight_g", f"{dst}.{WN_G}", (1, 1, 1, 1)),
              Tensor(f"{src}.weight_v", f"{dst}.{WN_V}", (1, 1, d.freq_axis_kernel, scale)),
              Tensor(f"{src}.bias", f"{dst}.bias", (1,))]
    return t
