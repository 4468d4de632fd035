"""Typed configuration with the paper's defaults.

One `Config` holds every section. It round-trips through YAML and takes dotted overrides from the
command line (``--set model.aux_dim=8``), so a short-clip or small-model run is a config change,
never a code change.

Clip geometry is derived, not stored twice: ``n_steps = round(clip_seconds * fps)`` visual steps,
``mel_frames = 4 * n_steps`` (the generator upsamples by 4 with two stride-2 transposed convs) and
``num_samples = mel_frames * hop_length``. For 10 s this gives the paper's 215 steps, 860 frames
and 220,160 samples. A clip's sound itself is ``clip_samples = round(clip_seconds * sample_rate)``
samples (220,500), cut or padded to that before its mel is taken.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from regnet.errors import UserError

MEL_FRAMES_PER_STEP = 4


def seconds_to_samples(seconds: float, sample_rate: int) -> int:
    """Samples in ``seconds`` at ``sample_rate``, rounded (`DataConfig.clip_samples` for a config's
    clip; this for a length at another rate, e.g. an embedder's)."""
    return int(round(seconds * sample_rate))


FLOW_METHODS = ("auto", "tvl1", "farneback")


def tvl1_available() -> bool:
    import cv2  # only where flow is resolved: the config itself needs no OpenCV

    return hasattr(cv2, "optflow") and hasattr(cv2.optflow, "DualTVL1OpticalFlow_create")


def resolve_flow_method(name: str) -> str:
    """'auto' -> the method actually used here; an unknown or unavailable one is a `UserError`."""
    if name not in FLOW_METHODS:
        raise UserError(f"data.flow_method: '{name}' is not one of {', '.join(FLOW_METHODS)}")
    if name == "auto":
        return "tvl1" if tvl1_available() else "farneback"
    if name == "tvl1" and not tvl1_available():
        raise UserError("data.flow_method: tvl1 needs opencv-contrib (cv2.optflow); "
                        "use farneback or auto")
    return name


@dataclass
class DataConfig:
    """Audio/video geometry and feature extraction. Everything here enters the feature-cache hash."""

    sample_rate: int = 22050
    n_fft: int = 1024
    win_length: int = 1024
    hop_length: int = 256
    n_mels: int = 80
    fmin: float = 125.0
    fmax: float = 7600.0
    fps: float = 21.5
    clip_seconds: float = 10.0
    # 'repeat' is the paper (short videos looped to the clip length); 'zero' is the authors' loader.
    pad_mode: str = "repeat"
    # Weight-free 'simple' works offline; 'bninception' and 'resnet' need backbone_weights (a local file).
    backbone: str = "simple"
    backbone_weights: str | None = None
    # 'auto' = TV-L1 where the installed OpenCV has it, Farneback otherwise.
    flow_method: str = "auto"
    flow_bound: float = 20.0
    # Frames are resized to this (width, height) on decode, for flow and the RGB backbone alike,
    # as the authors do (340x256).
    flow_size: tuple[int, int] = (340, 256)
    # Flow-stream weights of a CNN backbone; unset = the RGB file with TSN's cross-modality init.
    backbone_flow_weights: str | None = None
    # Input crop of the CNN backbones (TSN: 224 from frames with short side 256).
    backbone_size: int = 224
    # 'extract' = features made here; anything else names an imported cache ('authors':
    # `regnet-bench import-features`). It enters the hash, so imported and extracted caches never mix.
    feature_source: str = "extract"

    @property
    def n_steps(self) -> int:
        return int(round(self.clip_seconds * self.fps))

    @property
    def mel_frames(self) -> int:
        return MEL_FRAMES_PER_STEP * self.n_steps

    @property
    def num_samples(self) -> int:
        """Samples the model's mel covers (``mel_frames * hop_length``; 10 s: 220,160)."""
        return self.mel_frames * self.hop_length

    @property
    def clip_samples(self) -> int:
        """Samples of one clip, ``clip_seconds`` at ``sample_rate`` (10 s: 220,500). Longer than
        `num_samples`: a clip is cut or padded to this before its mel, whose last frames then see
        real sound rather than padding (`regnet.data.mel.log_mel`)."""
        return seconds_to_samples(self.clip_seconds, self.sample_rate)

    def cache_hash(self) -> str:
        """Hash of everything that changes the content of a feature file."""
        d = dataclasses.asdict(self)
        # Weights enter by content, not by path: replaced weights must invalidate the cache, a
        # moved file must not. 'auto' enters as the method it resolves to on this machine.
        for key in ("backbone_weights", "backbone_flow_weights"):
            if d[key] and self.backbone != "simple":
                d[key] = _file_digest(d[key], f"data.{key}")
        if self.feature_source == "extract":
            d["flow_method"] = resolve_flow_method(self.flow_method)
        payload = json.dumps(d, sort_keys=True, default=str)
        digest = hashlib.sha256(payload.encode()).hexdigest()[:16]
        return digest if self.feature_source == "extract" else f"external:{digest}"


@dataclass
class ModelConfig:
    """RegNet generator and discriminator sizes (paper size by default; docs/paper.md)."""

    # Per-step visual feature size: RGB dim + flow dim (BN-Inception: 1024 + 1024).
    visual_dim: int = 2048
    z_dim: int = 512
    encoder_channels: int = 2048
    encoder_kernel: int = 5
    encoder_dropout: float = 0.5
    lstm_hidden: int = 512
    # Audio forwarding regularizer: 'lstm' (RegNet: BiLSTM over the true mel), 'vs' (the same
    # BiLSTM over mel + visual features, the paper's VS variant), 'none' (woREG: no regularizer in
    # training or test). With S >= data.mel_frames it keeps one vector per clip (authors'
    # 'lstm_last'); with a smaller S it samples every S frames (authors' 'lstm_sample').
    regularizer: str = "lstm"
    aux_dim: int = 32  # D
    aux_sample: int = 860  # S, in mel frames; a multiple of 4
    generator_channels: int = 512
    postnet_channels: int = 512
    postnet_layers: int = 5
    postnet_kernel: int = 5
    disc_feature_channels: int = 1024
    # Width of each of the two branches (visual, mel) before they are concatenated.
    disc_branch_channels: int = 64
    disc_channels: tuple[int, int, int] = (256, 512, 1024)
    # Test time: 'zero_output' (the regularizer's output replaced by zeros: the paper's S0_hat and
    # the authors' documented test command, `aux_zero True`) or 'zero_input' (the regularizer runs
    # on an all-zero spectrogram: what their code does only with an explicit `mode_input vis`).
    test_regularizer: str = "zero_output"
    # Test-time z: 'random' (authors' code, fresh noise) or 'zero'.
    test_z: str = "random"
    init_std: float = 0.02


@dataclass
class TrainConfig:
    batch_size: int = 8
    epochs: int = 1000
    max_steps: int | None = None
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    lr_decay_start_epoch: int = 100
    alpha: float = 1.0  # weight of L2(I_hat, S), eq. (7)
    beta: float = 10000.0  # 10,000: where the authors' code puts it, see docs/paper.md (losses)
    # 'code' = GAN + beta * [alpha * MSE(I_hat,S) + MSE(S_hat,S)] (authors' code; every run in results/);
    # 'eq7' = beta * GAN + alpha * MSE(I_hat,S) + MSE(S_hat,S), D loss times beta (Eq. 7 as printed);
    # 'paper' = the code form / beta (not Eq. 7; kept for earlier runs). regnet.train.losses.
    loss_form: str = "code"
    # False = woGAN (paper §V-I): no discriminator and no adversarial term.
    adversarial: bool = True
    grad_clip: float = 1.0
    # One D update every d_interval G updates (authors: 1).
    d_interval: int = 1
    seed: int = 123
    num_workers: int = 0
    checkpoint_every: int = 500
    log_every: int = 10
    # Speed options (issue 12). amp: bf16 autocast of convolutions/LSTMs/linears with losses in
    # fp32; None = on when training on CUDA, off on CPU.
    amp: bool | None = None
    # torch.compile the generator and discriminator (pays off on long GPU runs only).
    compile: bool = False
    # Fused Adam kernels (CUDA only; ignored on CPU).
    fused_adam: bool = True
    cudnn_benchmark: bool = True
    # Default when neither --class nor --all-classes is given: one model per sound class (paper).
    per_class: bool = True


@dataclass
class VocoderConfig:
    """Mel-conditioned WaveNet (r9y9 wavenet_vocoder sizes; docs/paper.md)."""

    layers: int = 24
    stacks: int = 4
    residual_channels: int = 512
    gate_channels: int = 512
    skip_channels: int = 256
    kernel_size: int = 3
    dropout: float = 0.05
    n_mix: int = 10
    cin_channels: int = 80
    upsample_scales: tuple[int, ...] = (4, 4, 4, 4)
    # 'stretch' = r9y9's current Stretch2d + Conv2d upsampler; 'transposed' = the 2018 r9y9
    # ConvTranspose2d + ReLU one of the authors' released vocoders (regnet.vocoder.upsample).
    upsample_net: str = "stretch"
    log_scale_min: float = float(math.log(1e-14))
    weight_norm: bool = True
    # How the layers' skip outputs combine (regnet.vocoder.wavenet): 'sum-sqrt' = sqrt(1/L) * sum
    # (trained here); 'r9y9-2092a64' = the recurrence of the r9y9 commit the authors bundle, set by
    # import-checkpoint on their vocoders.
    skip_rule: str = "sum-sqrt"
    # Training
    batch_size: int = 4
    max_time_steps: int = 10240
    lr: float = 1e-3
    steps: int = 100000
    seed: int = 123
    checkpoint_every: int = 1000
    # Sampling: clips drawn together in one batch; weights/queues dtype ('float32'; 'bfloat16' or
    # 'float16' on CUDA only); CUDA-graph capture of the sampling step ('auto' = on CUDA).
    sample_batch: int = 8
    sample_dtype: str = "float32"
    cuda_graph: str = "auto"
    # Weight-free default vocoder (librosa Griffin-Lim on the inverted log-mel).
    griffin_lim_iters: int = 32


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    vocoder: VocoderConfig = field(default_factory=VocoderConfig)

    # -- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return _to_plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None, source: str = "config") -> "Config":
        cfg = cls()
        for section, values in (d or {}).items():
            if not hasattr(cfg, section):
                raise UserError(f"{source}: unknown config section '{section}'")
            if not isinstance(values, dict):
                raise UserError(f"{source}: section '{section}' must be a mapping")
            for key, value in values.items():
                cfg.set(f"{section}.{key}", value, source=source)
        return cfg

    def to_yaml(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def from_yaml(cls, path: str | Path) -> "Config":
        p = Path(path)
        if not p.is_file():
            raise UserError(f"{p}: config file not found")
        try:
            d = yaml.safe_load(p.read_text())
        except yaml.YAMLError as e:
            raise UserError(f"{p}: not valid YAML ({str(e).splitlines()[0]})") from None
        if d is not None and not isinstance(d, dict):
            raise UserError(f"{p}: top level must be a mapping of sections")
        return cls.from_dict(d, source=str(p))

    # -- overrides -----------------------------------------------------------------------------
    def set(self, dotted: str, value: Any, source: str = "--set") -> None:
        """Set ``section.key`` to ``value``, coercing strings to the field's declared type."""
        if "." not in dotted:
            raise UserError(f"{source}: '{dotted}' must be section.key, e.g. model.aux_dim")
        section_name, key = dotted.split(".", 1)
        section = getattr(self, section_name, None)
        if section is None or not dataclasses.is_dataclass(section):
            raise UserError(f"{source}: unknown config section '{section_name}'")
        fields = {f.name: f for f in dataclasses.fields(section)}
        if key not in fields:
            raise UserError(f"{source}: unknown config field '{dotted}'")
        hint = typing.get_type_hints(type(section))[key]
        setattr(section, key, _coerce(value, hint, dotted, source))

    def apply_overrides(self, items: list[str] | None) -> "Config":
        for item in items or []:
            if "=" not in item:
                raise UserError(f"--set {item}: expected section.key=value")
            k, v = item.split("=", 1)
            self.set(k.strip(), yaml.safe_load(v) if v.strip() else v, source=f"--set {item}")
        return self

    def validate(self, source: str = "config") -> "Config":
        """Refuse values no stage can work with (a zero clip length, a negative rate) here, in one
        line naming the field, instead of as a confusing failure per video later on."""
        for section, names in _POSITIVE.items():
            sec = getattr(self, section)
            for name in names:
                value = getattr(sec, name)
                values = value if isinstance(value, tuple) else (value,)
                if any(v is not None and not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0)
                       for v in values):
                    raise UserError(f"{source}: {section}.{name} must be > 0, got {value!r}")
        d = self.data
        if d.pad_mode not in PAD_MODES:
            raise UserError(f"{source}: data.pad_mode '{d.pad_mode}' is not one of {', '.join(PAD_MODES)}")
        if not 0 <= d.fmin < d.fmax:
            raise UserError(f"{source}: data.fmin {d.fmin} and data.fmax {d.fmax} need 0 <= fmin < fmax")
        if self.vocoder.skip_rule not in SKIP_RULES:
            raise UserError(f"{source}: vocoder.skip_rule '{self.vocoder.skip_rule}' is not one of "
                            f"{', '.join(SKIP_RULES)}")
        if d.n_steps < 1:
            raise UserError(f"{source}: data.clip_seconds {d.clip_seconds} at data.fps {d.fps} "
                            "gives no visual step")
        return self

    def copy(self) -> "Config":
        return Config.from_dict(self.to_dict())

    def hash(self) -> str:
        payload = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


PAD_MODES = ("repeat", "zero")
# vocoder.skip_rule values (regnet.vocoder.wavenet.add_skip).
SKIP_RULES = ("sum-sqrt", "r9y9-2092a64")
# Fields that must be positive numbers (None allowed where the type is Optional).
_POSITIVE: dict[str, tuple[str, ...]] = {
    "data": ("sample_rate", "n_fft", "win_length", "hop_length", "n_mels", "fps", "clip_seconds",
             "flow_bound", "flow_size", "backbone_size"),
    "model": ("visual_dim", "z_dim", "encoder_channels", "encoder_kernel", "lstm_hidden", "aux_dim",
              "aux_sample", "generator_channels", "postnet_channels", "postnet_layers", "postnet_kernel"),
    "train": ("batch_size", "epochs", "max_steps", "lr", "checkpoint_every", "log_every", "d_interval"),
    "vocoder": ("layers", "stacks", "residual_channels", "gate_channels", "skip_channels", "kernel_size",
                "n_mix", "cin_channels", "upsample_scales", "batch_size", "max_time_steps", "lr", "steps",
                "checkpoint_every", "sample_batch", "griffin_lim_iters"),
}


def preset(name: str) -> Config:
    """Named starting points. 'paper' is the paper; 'small' is a CPU-sized model on 2 s clips."""
    cfg = Config()
    if name == "paper":
        return cfg
    if name in ("small", "tiny"):
        cfg.data.clip_seconds = 2.0
        # TV-L1 costs ~0.6 s per frame pair on a CPU core; Farneback at half the authors' frame
        # size keeps CPU extraction to a fraction of a second per clip.
        cfg.data.flow_method = "farneback"
        cfg.data.flow_size = (170, 128)
        cfg.model.aux_sample = cfg.data.mel_frames
        wide = name == "small"
        cfg.model.z_dim = 32 if wide else 8
        cfg.model.encoder_channels = 256 if wide else 32
        cfg.model.lstm_hidden = 128 if wide else 16
        cfg.model.generator_channels = 128 if wide else 32
        cfg.model.postnet_channels = 128 if wide else 32
        cfg.model.disc_feature_channels = 128 if wide else 16
        cfg.model.disc_channels = (64, 128, 128) if wide else (16, 32, 32)
        cfg.train.batch_size = 8 if wide else 4
        cfg.vocoder.layers = 12 if wide else 4
        cfg.vocoder.stacks = 2
        cfg.vocoder.residual_channels = 64 if wide else 16
        cfg.vocoder.gate_channels = 64 if wide else 16
        cfg.vocoder.skip_channels = 64 if wide else 16
        return cfg
    raise UserError(f"unknown preset '{name}' (choose paper, small or tiny)")


def load_config(path: str | Path | None = None, preset_name: str | None = None,
                overrides: list[str] | None = None) -> Config:
    """The CLI's way in: a preset, then a YAML file on top, then ``--set`` overrides."""
    cfg = preset(preset_name) if preset_name else Config()
    if path:
        file_cfg = Config.from_yaml(path)  # validates the file and names it in errors
        cfg = Config.from_dict(_deep_merge(cfg.to_dict(), yaml.safe_load(Path(path).read_text()) or {}),
                               str(path)) if preset_name else file_cfg
    source = " / ".join(([str(path)] if path else []) + (["--set"] if overrides else [])) or "config"
    return cfg.apply_overrides(overrides).validate(source)


# -- helpers -----------------------------------------------------------------------------------
_DIGESTS: dict[tuple[str, int, int], str] = {}


def _file_digest(path: str, field_name: str) -> str:
    """sha256 of a file's content, remembered per (path, size, mtime) so big weights hash once."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        raise UserError(f"{field_name}: weights file {p} not found") from None
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        h = hashlib.sha256()
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        _DIGESTS[key] = "sha256:" + h.hexdigest()[:16]
    return _DIGESTS[key]


def _deep_merge(base: dict, top: dict) -> dict:
    out = dict(base)
    for k, v in top.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _to_plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_plain(v) for v in obj]
    return obj


def _coerce(value: Any, hint: Any, name: str, source: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "")):
            if type(None) in args:
                return None
        non_none = [a for a in args if a is not type(None)]
        return _coerce(value, non_none[0], name, source)
    if origin is tuple:
        if isinstance(value, str):
            value = [v for v in value.replace("(", "").replace(")", "").split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{source}: {name} must be a list, got {value!r}")
        item_types = args if args and args[-1] is not Ellipsis else (args[0],) * len(value)
        if len(item_types) != len(value):
            raise UserError(f"{source}: {name} needs {len(item_types)} values, got {len(value)}")
        return tuple(_coerce(v, t, name, source) for v, t in zip(value, item_types))
    try:
        if hint is bool:
            if isinstance(value, str):
                if value.lower() in ("true", "1", "yes", "on"):
                    return True
                if value.lower() in ("false", "0", "no", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if hint is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if hint is float:
            return float(value)
        if hint is str:
            return str(value)
    except (TypeError, ValueError):
        raise UserError(f"{source}: {name} must be {hint.__name__}, got {value!r}") from None
    return value
