"""Convert between the authors' checkpoint files and ours, through the tables in `layout`.

Import reads every source tensor through one table entry: a key the table lacks, a table key the
file lacks, or a shape that differs is a one-line `UserError` naming the key. The sizes the tables
need are inferred from the file's own tensors; what a state dict cannot tell (the visual/z split
without netD, the WaveNet's stacks, the regularizer's S for 'lstm_sample') comes from the config
given on the command line, whose paper defaults match the authors' release.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from regnet.atomic import atomic_path
from regnet.authors.layout import (RegNetDims, Tensor, WaveNetDims, regnet_d_table, regnet_g_table,
                                   wavenet_table)
from regnet.authors.features import external_data_config
from regnet.config import Config
from regnet.errors import UserError

log = logging.getLogger(__name__)

OURS_REGNET = "regnet-bench/regnet"
OURS_WAVENET = "regnet-bench/wavenet"
G_KEY, D_KEY = "optimizer_netG", "optimizer_netD"
# The authors' lstm_last regularizer repeats its code over exactly 215 steps (10 s at 21.5 fps).
AUTHORS_STEPS = 215


# -- files -------------------------------------------------------------------------------------
def read_torch(path: Path) -> Any:
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    try:
        # weights_only: their files hold dicts, numbers and tensors; nothing needs code to load.
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a foreign file
        raise UserError(f"{path}: not a readable PyTorch file ({str(e).splitlines()[0][:120]})") from None


def regnet_pair(path: Path) -> tuple[Path, Path]:
    """Their checkpoints come in pairs; accept the prefix (as their ``checkpoint_path``) or either file."""
    s = str(path)
    prefix = s[:-5] if s.endswith(("_netG", "_netD")) else s
    return Path(prefix + "_netG"), Path(prefix + "_netD")


def kind_of(path: str | Path) -> str | None:
    """'regnet' / 'wavenet' for an authors' file (or pair prefix), 'ours' for ours, None otherwise."""
    path = Path(path)
    if not path.is_file():
        g, _ = regnet_pair(path)
        return "regnet" if g.is_file() else None
    obj = None
    # mmap reads only what is touched (generate calls this on every checkpoint it is given); the
    # pre-1.6 files the authors saved cannot be mapped and are read whole.
    for kwargs in ({"mmap": True}, {}):
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True, **kwargs)
            break
        except Exception:
            continue
    if not isinstance(obj, dict):
        return None
    if str(obj.get("format", "")).startswith("regnet-bench/"):
        return "ours"
    if G_KEY in obj or D_KEY in obj:
        return "regnet"
    sd = obj.get("state_dict")
    if isinstance(sd, dict) and any(k.endswith("first_conv.weight_v") or k.endswith("first_conv.weight")
                                    for k in sd):
        return "wavenet"
    return None


def _state_dict(obj: Any, key: str, where: Path) -> dict[str, torch.Tensor]:
    if not isinstance(obj, dict) or key not in obj:
        raise UserError(f"{where}: no '{key}' entry (not an authors' checkpoint of this kind)")
    sd = obj[key]
    if not isinstance(sd, dict) or not sd:
        raise UserError(f"{where}: '{key}' is not a state dict")
    # DataParallel prefixes every key when the wrapper itself was saved.
    if all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return dict(sd)


def _shape(sd: dict, key: str, where: str) -> tuple[int, ...]:
    if key not in sd:
        raise UserError(f"{where}: key '{key}' missing")
    return tuple(sd[key].shape)


def _fmt(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def convert(sd: dict[str, torch.Tensor], table: list[Tensor], where: str,
            reverse: bool = False) -> dict[str, torch.Tensor]:
    """Walk the table once: every entry must find its tensor with its shape, every tensor an entry."""
    left = dict(sd)
    out: dict[str, torch.Tensor] = {}
    for t in table:
        src, dst = (t.target, t.source) if reverse else (t.source, t.target)
        if src not in left:
            raise UserError(f"{where}: key '{src}' missing (expected shape {_fmt(t.shape)})")
        v = left.pop(src)
        if not isinstance(v, torch.Tensor):
            raise UserError(f"{where}: key '{src}' is a {type(v).__name__}, not a tensor")
        if tuple(v.shape) != t.shape:
            raise UserError(f"{where}: key '{src}' has shape {_fmt(tuple(v.shape))}, expected {_fmt(t.shape)}")
        out[dst] = v
    if left:
        extra = sorted(left)
        more = f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""
        raise UserError(f"{where}: key '{extra[0]}' is not part of the layout{more}")
    return out


# -- RegNet ------------------------------------------------------------------------------------
def _count(sd: dict, pattern: str) -> int:
    rx = re.compile(pattern)
    return len({m.group(1) for k in sd if (m := rx.match(k))})


def infer_regnet_dims(g: dict, d: dict | None, base: Config, where: str) -> RegNetDims:
    n_mels = _shape(g, "decoder.model.9.weight", where)[0]
    enc, vz, k = _shape(g, "encoder.convolutions.0.0.conv.weight", where)
    hidden = _shape(g, "encoder.BiLSTM.weight_hh_l0", where)[1]
    if any(key.startswith("auxiliary.conv") for key in g):
        raise UserError(f"{where}: key 'auxiliary.conv.0.weight': the authors' 'conv' regularizer has "
                        "no counterpart here (lstm_last and lstm_sample do)")
    if "auxiliary.BiLSTM_proj.weight" in g:
        kind, aux = "last", _shape(g, "auxiliary.BiLSTM_proj.weight", where)[0]
    elif "auxiliary.BiLSTM.weight_hh_l0" in g:
        kind, aux = "sample", 2 * _shape(g, "auxiliary.BiLSTM.weight_hh_l0", where)[1]
    else:
        kind, aux = "none", 0
    aux_in = _shape(g, "auxiliary.BiLSTM.weight_ih_l0", where)[1] if kind != "none" else n_mels
    post, _, post_k = _shape(g, "postnet.convolutions.0.0.conv.weight", where)
    m = base.model
    if d is not None:
        dwhere = where.replace(G_KEY, D_KEY)
        visual, fc, _ = _shape(d, "feature_conv.0.weight", dwhere)
        bc = _shape(d, "feature_conv.3.weight", dwhere)[1]
        chans = tuple(_shape(d, f"down_sampling.{i}.weight", dwhere)[0] for i in (0, 2, 5))
    else:
        visual, fc, bc, chans = m.visual_dim, m.disc_feature_channels, m.disc_branch_channels, m.disc_channels
    if vz <= visual:
        raise UserError(f"{where}: key 'encoder.convolutions.0.0.conv.weight' reads {vz} input channels, "
                        f"not visual_dim {visual} + z_dim (set model.visual_dim if the features differ)")
    return RegNetDims(
        visual_dim=visual, z_dim=vz - visual, encoder_channels=enc, encoder_kernel=k, lstm_hidden=hidden,
        aux_kind=kind, aux_dim=aux, aux_input=aux_in, generator_channels=_shape(g, "decoder.model.0.weight", where)[1],
        n_mels=n_mels, postnet_channels=post, postnet_kernel=post_k,
        postnet_layers=_count(g, r"postnet\.convolutions\.(\d+)\."),
        disc_feature_channels=fc, disc_branch_channels=bc, disc_channels=chans)  # type: ignore[arg-type]


def regnet_config(dims: RegNetDims, base: Config, where: str) -> Config:
    """Our Config for these sizes: model section from the file, the rest from ``base``."""
    cfg = base.copy()
    m = cfg.model
    if dims.n_mels != cfg.data.n_mels:
        raise UserError(f"{where}: the model makes {dims.n_mels} mel bins, data.n_mels is {cfg.data.n_mels}")
    m.visual_dim, m.z_dim = dims.visual_dim, dims.z_dim
    m.encoder_channels, m.encoder_kernel, m.lstm_hidden = dims.encoder_channels, dims.encoder_kernel, dims.lstm_hidden
    m.generator_channels = dims.generator_channels
    m.postnet_channels, m.postnet_kernel, m.postnet_layers = dims.postnet_channels, dims.postnet_kernel, dims.postnet_layers
    m.disc_feature_channels, m.disc_branch_channels = dims.disc_feature_channels, dims.disc_branch_channels
    m.disc_channels = tuple(dims.disc_channels)
    if dims.aux_kind == "none":
        m.regularizer = "none"
    else:
        m.aux_dim = dims.aux_dim
        m.regularizer = "lstm" if dims.aux_input == dims.n_mels else "vs"
        if m.regularizer == "vs" and dims.aux_input != dims.n_mels + dims.visual_dim:
            raise UserError(f"{where}: key 'auxiliary.BiLSTM.weight_ih_l0' reads {dims.aux_input} channels, "
                            f"neither n_mels {dims.n_mels} nor n_mels + visual_dim")
        if dims.aux_kind == "last":
            m.aux_sample = max(m.aux_sample, cfg.data.mel_frames)
        elif m.aux_sample >= cfg.data.mel_frames:
            raise UserError("model.aux_sample: the file's regularizer samples every S frames (their "
                            "'lstm_sample'); give S with --set model.aux_sample=S (auxiliary_sample_rate)")
    return cfg


def dims_from_config(cfg: Config) -> RegNetDims:
    m = cfg.model
    if m.regularizer == "none":
        kind = "none"
    else:
        kind = "last" if m.aux_sample >= cfg.data.mel_frames else "sample"
    return RegNetDims(
        visual_dim=m.visual_dim, z_dim=m.z_dim, encoder_channels=m.encoder_channels,
        encoder_kernel=m.encoder_kernel, lstm_hidden=m.lstm_hidden, aux_kind=kind,
        aux_dim=m.aux_dim if kind != "none" else 0,
        aux_input=cfg.data.n_mels + (m.visual_dim if m.regularizer == "vs" else 0),
        generator_channels=m.generator_channels, n_mels=cfg.data.n_mels,
        postnet_channels=m.postnet_channels, postnet_kernel=m.postnet_kernel, postnet_layers=m.postnet_layers,
        disc_feature_channels=m.disc_feature_channels, disc_branch_channels=m.disc_branch_channels,
        disc_channels=tuple(m.disc_channels))  # type: ignore[arg-type]


@dataclass
class Imported:
    kind: str  # 'regnet' | 'wavenet'
    out: Path
    config: Config
    step: int
    class_name: str


def import_regnet(path: str | Path, out: str | Path, base: Config, class_name: str | None = None) -> Imported:
    """Their ``checkpoint_XXXXXX_netG`` (+ ``_netD`` when present) -> one regnet-bench checkpoint."""
    from regnet.models import Discriminator, RegNet
    from regnet.train.checkpoint import save_checkpoint

    g_path, d_path = regnet_pair(Path(path))
    g_obj = read_torch(g_path)
    g_sd = _state_dict(g_obj, G_KEY, g_path)
    d_sd = _state_dict(read_torch(d_path), D_KEY, d_path) if d_path.is_file() else None
    if d_sd is None:
        log.warning("%s not found: importing the generator only (visual_dim %d taken from the config)",
                    d_path, base.model.visual_dim)
    where = f"{g_path}: {G_KEY}"
    dims = infer_regnet_dims(g_sd, d_sd, base, where)
    cfg = regnet_config(dims, base, where)
    gen = RegNet(cfg)
    gen.load_state_dict(convert(g_sd, regnet_g_table(dims), where))
    disc = None
    if d_sd is not None:
        disc = Discriminator(cfg)
        disc.load_state_dict(convert(d_sd, regnet_d_table(dims), f"{d_path}: {D_KEY}"))
    step = int(g_obj.get("iteration", 0) or 0)
    name = class_name or "all"
    # Trained on the authors' features: generate then reads an import-features cache made with the
    # same data settings, and never extracts features of its own for this model.
    data_hash = external_data_config(cfg.data).cache_hash()
    save_checkpoint(out, cfg, gen, disc, step=step, class_name=name, data_hash=data_hash,
                    extra={"source": {"kind": "authors-regnet", "path": str(g_path),
                                      "learning_rate": g_obj.get("learning_rate")}})
    log.info("imported %s (iteration %d): visual %d, z %d, D %d, regularizer %s", g_path, step,
             dims.visual_dim, dims.z_dim, dims.aux_dim, cfg.model.regularizer)
    return Imported("regnet", Path(out), cfg, step, name)


def _authors_opts(cfg: Config, dims: RegNetDims) -> dict[str, Any]:
    """The config keys their ``config/*.yml`` needs to rebuild this model (dog_opts.yml names)."""
    return {
        "visual_dim": dims.visual_dim, "random_z_dim": dims.z_dim,
        "encoder_embedding_dim": dims.encoder_channels, "encoder_kernel_size": dims.encoder_kernel,
        "encoder_n_convolutions": 3, "encoder_n_lstm": 2, "decoder_conv_dim": dims.encoder_out,
        "auxiliary_type": "lstm_last" if dims.aux_kind == "last" else "lstm_sample",
        "auxiliary_dim": dims.aux_dim, "auxiliary_sample_rate": min(cfg.model.aux_sample, cfg.data.mel_frames),
        "n_mel_channels": dims.n_mels, "postnet_embedding_dim": dims.postnet_channels,
        "postnet_kernel_size": dims.postnet_kernel, "postnet_n_convolutions": dims.postnet_layers,
        "video_samples": cfg.data.n_steps, "mel_samples": cfg.data.mel_frames,
    }


def _expressible(cfg: Config, dims: RegNetDims) -> list[str]:
    """Why their code could not rebuild this model from a config, if it could not."""
    why = []
    if cfg.model.regularizer != "lstm":
        why.append(f"model.regularizer '{cfg.model.regularizer}' (theirs: lstm_last / lstm_sample)")
    if dims.lstm_hidden * 4 != dims.encoder_channels:
        why.append("model.lstm_hidden != encoder_channels / 4")
    if dims.generator_channels * 2 != dims.encoder_out or dims.disc_feature_channels != dims.encoder_out:
        why.append("generator/discriminator widths not tied to decoder_conv_dim as theirs are")
    if dims.disc_branch_channels != 64 or tuple(dims.disc_channels) != (256, 512, 1024):
        why.append("discriminator widths differ from their fixed 64/256/512/1024")
    if cfg.data.n_steps != AUTHORS_STEPS and dims.aux_kind == "last":
        why.append(f"{cfg.data.n_steps} steps per clip (their lstm_last repeats over {AUTHORS_STEPS})")
    return why


def export_regnet(ck: dict, src: Path, out: str | Path) -> list[Path]:
    """Ours -> ``OUT_netG``, ``OUT_netD`` (their pair) and ``OUT_opts.yml`` (their config keys)."""
    cfg = Config.from_dict(ck["config"], source=f"{src}: config")
    dims = dims_from_config(cfg)
    if dims.aux_kind == "none" or cfg.model.regularizer != "lstm":
        raise UserError(f"{src}: model.regularizer '{cfg.model.regularizer}' has no counterpart in the "
                        "authors' code (lstm_last / lstm_sample)")
    for why in _expressible(cfg, dims):
        log.warning("their code cannot build this model from its config as is: %s", why)
    lr = cfg.train.lr
    opt = ck.get("opt_g")
    if isinstance(opt, dict) and opt.get("param_groups"):
        lr = float(opt["param_groups"][0].get("lr", lr))
    written = []
    prefix = str(out)
    for name, key, table in (("G", "generator", regnet_g_table(dims)), ("D", "discriminator", regnet_d_table(dims))):
        sd = ck.get(key)
        if sd is None:
            if name == "G":
                raise UserError(f"{src}: no generator weights")
            log.warning("%s: no discriminator weights; writing %s_netG only", src, prefix)
            continue
        theirs = convert(sd, table, f"{src}: {key}", reverse=True)
        p = Path(f"{prefix}_net{name}")
        with atomic_path(p) as tmp:
            torch.save({"iteration": int(ck.get("step", 0)), "learning_rate": lr, f"optimizer_net{name}": theirs},
                       tmp)
        written.append(p)
    opts = Path(f"{prefix}_opts.yml")
    opts.write_text(yaml.safe_dump(_authors_opts(cfg, dims), sort_keys=True))
    written.append(opts)
    return written


# -- WaveNet -----------------------------------------------------------------------------------
def infer_wavenet_dims(sd: dict, where: str) -> WaveNetDims:
    if "first_conv.weight" in sd and "first_conv.weight_v" not in sd:
        raise UserError(f"{where}: key 'first_conv.weight': a WaveNet without weight norm; the "
                        "authors' vocoders use weight_g / weight_v")
    r, first_in, _ = _shape(sd, "first_conv.weight_v", where)
    if first_in != 1:
        raise UserError(f"{where}: key 'first_conv.weight_v' reads {first_in} channels: a one-hot "
                        "(mu-law) WaveNet; only scalar input with a logistic mixture is supported")
    g, _, k = _shape(sd, "conv_layers.0.conv.weight_v", where)
    out = _shape(sd, "last_conv_layers.3.weight_v", where)[0]
    if out % 3:
        raise UserError(f"{where}: key 'last_conv_layers.3.weight_v' has {out} outputs, not 3 per logistic")
    n_up = _count(sd, r"upsample_conv\.(\d+)\.")
    scales = tuple(_shape(sd, f"upsample_conv.{2 * j}.weight_v", where)[3] for j in range(n_up))
    if not scales:
        raise UserError(f"{where}: key 'upsample_conv.0.weight_v' missing (a WaveNet without "
                        "conditioning upsampling cannot vocode mels)")
    return WaveNetDims(
        layers=_count(sd, r"conv_layers\.(\d+)\."), residual_channels=r, gate_channels=g,
        skip_channels=_shape(sd, "conv_layers.0.conv1x1_skip.weight_v", where)[0], kernel_size=k,
        cin_channels=_shape(sd, "conv_layers.0.conv1x1c.weight_v", where)[1], out_channels=out,
        upsample_scales=scales, freq_axis_kernel=_shape(sd, "upsample_conv.0.weight_v", where)[2])


def wavenet_config(dims: WaveNetDims, base: Config, where: str) -> Config:
    cfg = base.copy()
    v = cfg.vocoder
    if dims.layers % v.stacks:
        raise UserError(f"vocoder.stacks: {dims.layers} layers in {where} do not split into {v.stacks} "
                        "stacks (the file does not record stacks; set --set vocoder.stacks=N)")
    if math.prod(dims.upsample_scales) != cfg.data.hop_length:
        raise UserError(f"{where}: upsample scales {list(dims.upsample_scales)} multiply to "
                        f"{math.prod(dims.upsample_scales)}, not data.hop_length {cfg.data.hop_length}")
    v.layers, v.residual_channels, v.gate_channels = dims.layers, dims.residual_channels, dims.gate_channels
    v.skip_channels, v.kernel_size, v.cin_channels = dims.skip_channels, dims.kernel_size, dims.cin_channels
    v.n_mix, v.upsample_scales = dims.out_channels // 3, tuple(dims.upsample_scales)
    v.upsample_net, v.weight_norm = "transposed", True
    # Their vocoders come from r9y9 at 2092a64, whose skips follow its recurrence (regnet.vocoder.wavenet).
    v.skip_rule = "r9y9-2092a64"
    return cfg


def wavenet_dims_from_config(cfg: Config) -> WaveNetDims:
    from regnet.vocoder.upsample import FREQ_KERNEL

    v = cfg.vocoder
    return WaveNetDims(layers=v.layers, residual_channels=v.residual_channels, gate_channels=v.gate_channels,
                       skip_channels=v.skip_channels, kernel_size=v.kernel_size, cin_channels=v.cin_channels,
                       out_channels=3 * v.n_mix, upsample_scales=tuple(v.upsample_scales),
                       freq_axis_kernel=FREQ_KERNEL)


def class_from_filename(path: Path) -> str | None:
    """Their vocoders are named ``<class>_checkpoint_step000200000_ema.pth``."""
    m = re.match(r"(.+?)_checkpoint_step\d+", path.name)
    return m.group(1) if m else None


def import_wavenet(path: str | Path, out: str | Path, base: Config, class_name: str | None = None) -> Imported:
    from regnet.vocoder.wavenet import WaveNet

    path = Path(path)
    obj = read_torch(path)
    sd = _state_dict(obj, "state_dict", path)
    where = f"{path}: state_dict"
    dims = infer_wavenet_dims(sd, where)
    cfg = wavenet_config(dims, base, where)
    model = WaveNet(cfg.vocoder)
    model.load_state_dict(convert(sd, wavenet_table(dims), where))
    step = int(obj.get("global_step", 0) or 0)
    name = class_name or class_from_filename(path) or "all"
    save_wavenet(out, cfg, model, step, name, source={"kind": "authors-wavenet", "path": str(path)})
    log.info("imported %s (step %d): %d layers, %d logistics, upsample %s", path, step, dims.layers,
             dims.out_channels // 3, list(dims.upsample_scales))
    return Imported("wavenet", Path(out), cfg, step, name)


def save_wavenet(out: str | Path, cfg: Config, model: torch.nn.Module, step: int, class_name: str,
                 source: dict) -> None:
    from regnet.vocoder.checkpoint import save_vocoder

    # Their mel (docs/paper.md) is our default DataConfig's; the vocoder records it for later checks.
    save_vocoder(out, model, cfg.data, class_name, step, extra={"source": source})


def export_wavenet(ck: dict, src: Path, out: str | Path) -> list[Path]:
    """Ours -> their ``{"state_dict", "optimizer", "global_step", "global_epoch"}``."""
    vocoder = ck.get("config")
    if not isinstance(vocoder, dict):
        raise UserError(f"{src}: no vocoder config")
    cfg = Config.from_dict({"vocoder": vocoder}, source=f"{src}: config")
    if cfg.vocoder.upsample_net != "transposed" or not cfg.vocoder.weight_norm:
        raise UserError(f"{src}: vocoder.upsample_net '{cfg.vocoder.upsample_net}' / weight_norm "
                        f"{cfg.vocoder.weight_norm}: the authors' WaveNet needs 'transposed' with weight norm")
    if "skip_rule" not in vocoder:
        from regnet.vocoder.checkpoint import skip_rule_of_legacy

        cfg.vocoder.skip_rule = skip_rule_of_legacy(ck)
    theirs = convert(ck["model"], wavenet_table(wavenet_dims_from_config(cfg)), f"{src}: model", reverse=True)
    if cfg.vocoder.skip_rule != "r9y9-2092a64":
        theirs = fold_sum_sqrt_into_r9y9(theirs, cfg.vocoder.layers)
        log.warning("%s: vocoder.skip_rule '%s'; their r9y9 code combines skips by its 2092a64 recurrence, "
                    "so each conv1x1_skip is rescaled to give the same output there (not a bit-exact copy)",
                    src, cfg.vocoder.skip_rule)
    out = Path(out)
    with atomic_path(out) as tmp:
        torch.save({"state_dict": theirs, "optimizer": None, "global_step": int(ck.get("step", 0)),
                    "global_epoch": 0}, tmp)
    return [out]


def r9y9_skip_factors(n_layers: int) -> list[float]:
    """Each layer's weight in r9y9 2092a64's skip recurrence: (sqrt 1/2)^(L-1) for the first, (sqrt
    1/2)^(L-i+1) for layer i >= 2 (1-based)."""
    return [math.sqrt(0.5) ** (n_layers - max(i, 2) + 1) for i in range(1, n_layers + 1)]


def fold_sum_sqrt_into_r9y9(sd: dict[str, torch.Tensor], n_layers: int) -> dict[str, torch.Tensor]:
    """A 'sum-sqrt' network's r9y9 state dict rescaled so the 2092a64 recurrence gives its output:
    layer i's skip conv (weight_g and bias; weight norm makes the weight linear in weight_g) times
    sqrt(1/L) / f_i."""
    out = dict(sd)
    for i, f in enumerate(r9y9_skip_factors(n_layers)):
        k = math.sqrt(1.0 / n_layers) / f
        for name in ("weight_g", "bias"):
            key = f"conv_layers.{i}.conv1x1_skip.{name}"
            out[key] = sd[key] * k
    return out


# -- entry points ------------------------------------------------------------------------------
def import_checkpoint(path: str | Path, out: str | Path, base: Config, class_name: str | None = None) -> Imported:
    kind = kind_of(path)
    if kind == "regnet":
        return import_regnet(path, out, base, class_name)
    if kind == "wavenet":
        return import_wavenet(path, out, base, class_name)
    if kind == "ours":
        raise UserError(f"{path}: already a regnet-bench checkpoint")
    raise UserError(f"{path}: neither an authors' RegNet checkpoint (checkpoint_XXXXXX_netG with "
                    f"'{G_KEY}') nor an r9y9 WaveNet checkpoint ('state_dict' with first_conv)")


def export_checkpoint(path: str | Path, out: str | Path) -> list[Path]:
    path = Path(path)
    ck = read_torch(path)
    fmt = ck.get("format") if isinstance(ck, dict) else None
    if fmt == OURS_REGNET:
        return export_regnet(ck, path, out)
    if fmt == OURS_WAVENET:
        return export_wavenet(ck, path, out)
    raise UserError(f"{path}: not a regnet-bench checkpoint (format {fmt!r})")
