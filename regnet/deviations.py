"""Where a run departs from the paper's system, in words, so no table is mistaken for its setup.

The paper's system (Chen et al. 2020, and the authors' code where the paper is silent) is the
default `Config()`: 10 s clips at 21.5 fps, BN-Inception RGB + TV-L1 flow features, the paper-size
RegNet trained with the authors' loss, and a per-class WaveNet vocoder. Defaults that keep the
tool offline (the weight-free 'simple' backbone, Griffin-Lim) and the CPU presets differ from it;
`paper_deviations` lists each difference once, `announce` logs them (once per process and list),
and the outputs carry them: the feature cache's ``cache_config.yaml``, the ``deviations`` column
of ``clips.csv`` and the ablation tables.
"""

from __future__ import annotations

import logging
from pathlib import Path

import yaml

from regnet.atomic import atomic_path
from regnet.config import Config, DataConfig, ModelConfig, VocoderConfig, resolve_flow_method

log = logging.getLogger(__name__)

PAPER = Config()
# Sizes of the networks; a difference here means a smaller (or larger) model than the paper's.
_MODEL_SIZES = ("visual_dim", "z_dim", "encoder_channels", "encoder_kernel", "lstm_hidden", "aux_dim",
                "aux_sample", "generator_channels", "postnet_channels", "postnet_layers", "postnet_kernel",
                "disc_feature_channels", "disc_branch_channels", "disc_channels")
_WAVENET_SIZES = ("layers", "stacks", "residual_channels", "gate_channels", "skip_channels", "kernel_size",
                  "n_mix")
_MEL = ("sample_rate", "n_fft", "win_length", "hop_length", "n_mels", "fmin", "fmax", "fps")
SEP = "; "


def data_deviations(d: DataConfig) -> list[str]:
    p = PAPER.data
    out = []
    if d.feature_source == "extract":
        if d.backbone == "simple":
            out.append("visual features from the weight-free 'simple' backbone (paper: BN-Inception)")
        elif d.backbone != p.backbone and d.backbone != "bninception":
            out.append(f"visual backbone '{d.backbone}' (paper: BN-Inception)")
        elif not d.backbone_weights:
            out.append("BN-Inception without weights (paper: its ImageNet/Kinetics weights)")
        try:
            flow = resolve_flow_method(d.flow_method)
        except Exception:  # an unusable method fails where flow is computed, with its own message
            flow = d.flow_method
        if flow != "tvl1":
            out.append(f"{flow.capitalize()} optical flow (paper: TV-L1)")
        if tuple(d.flow_size) != tuple(p.flow_size):
            out.append(f"frames at {d.flow_size[0]}x{d.flow_size[1]} (paper: {p.flow_size[0]}x{p.flow_size[1]})")
    elif d.feature_source != "authors":
        # The authors' released features are BN-Inception RGB + TV-L1 flow: the paper's own.
        out.append(f"features imported ({d.feature_source}), not extracted here")
    if d.clip_seconds != p.clip_seconds:
        out.append(f"{d.clip_seconds:g} s clips (paper: {p.clip_seconds:g} s)")
    if d.pad_mode != p.pad_mode:
        out.append(f"pad_mode '{d.pad_mode}' (paper: '{p.pad_mode}')")
    mel = [f"{k} {getattr(d, k):g}" for k in _MEL if getattr(d, k) != getattr(p, k)]
    if mel:
        out.append("audio/video geometry differs (" + ", ".join(mel) + ")")
    return out


def model_deviations(m: ModelConfig, d: DataConfig | None = None) -> list[str]:
    p = PAPER.model
    out = []
    # S at least the clip's mel frames is the authors' 'lstm_last' at any clip length.
    whole = d is not None and m.aux_sample >= d.mel_frames and p.aux_sample >= PAPER.data.mel_frames
    sizes = [k for k in _MODEL_SIZES if getattr(m, k) != getattr(p, k) and not (k == "aux_sample" and whole)]
    if sizes:
        out.append("RegNet sizes differ from the paper's (" + ", ".join(f"{k} {_v(getattr(m, k))}" for k in sizes)
                   + ")")
    if m.test_regularizer != p.test_regularizer:
        out.append(f"test-time regularizer '{m.test_regularizer}' (paper: its output zeroed)")
    return out


def train_deviations(cfg: Config) -> list[str]:
    t, p = cfg.train, PAPER.train
    out = []
    if t.loss_form != p.loss_form:
        out.append(f"loss_form '{t.loss_form}' (authors' runs: '{p.loss_form}')")
    if not t.adversarial:
        out.append("no adversarial loss (woGAN)")
    return out


def vocoder_deviations(vocoder: str | None, vcfg: VocoderConfig | None = None) -> list[str]:
    if vocoder is None:
        return []
    if str(vocoder).startswith("griffin-lim"):
        return ["Griffin-Lim vocoder (paper: WaveNet)"]
    out = []
    if vcfg is not None:
        p = PAPER.vocoder
        sizes = [k for k in _WAVENET_SIZES if getattr(vcfg, k) != getattr(p, k)]
        if sizes:
            out.append("WaveNet sizes differ from the paper's (" +
                       ", ".join(f"{k} {getattr(vcfg, k)}" for k in sizes) + ")")
        if vcfg.skip_rule != "r9y9-2092a64":
            # The authors' vocoders come from r9y9 at 2092a64 (regnet.vocoder.wavenet).
            out.append(f"WaveNet skip rule '{vcfg.skip_rule}' (the authors': r9y9-2092a64)")
    return out


def paper_deviations(cfg: Config, vocoder: str | None = None, vocoder_cfg: VocoderConfig | None = None,
                     parts: tuple[str, ...] = ("data", "model", "train")) -> list[str]:
    """Every way ``cfg`` (and the vocoder, by name: 'griffin-lim' or a WaveNet) departs from the
    paper's system, one short phrase each; empty when it is the paper's."""
    out = []
    if "data" in parts:
        out += data_deviations(cfg.data)
    if "model" in parts:
        out += model_deviations(cfg.model, cfg.data)
    if "train" in parts:
        out += train_deviations(cfg)
    return out + vocoder_deviations(vocoder, vocoder_cfg)


def join(deviations: list[str]) -> str:
    return SEP.join(deviations)


_SAID: set[tuple[str, tuple[str, ...]]] = set()


def announce(what: str, deviations: list[str]) -> None:
    """Log the list once per process (a verb calls this per stage; repeats would drown the log)."""
    key = (what, tuple(deviations))
    if key in _SAID:
        return
    _SAID.add(key)
    if deviations:
        log.warning("%s deviates from the paper's system: %s", what, join(deviations))
    else:
        log.info("%s: the paper's system", what)


CACHE_CONFIG = "cache_config.yaml"


def write_cache_config(cache_dir: str | Path, d: DataConfig) -> Path:
    """``cache_config.yaml`` in a feature cache: the data config its files were made with, its hash
    and its deviations from the paper's features."""
    path = Path(cache_dir) / CACHE_CONFIG
    payload = {"config_hash": d.cache_hash(), "data": Config(data=d).to_dict()["data"],
               "deviations": data_deviations(d)}
    with atomic_path(path) as tmp:
        Path(tmp).write_text(yaml.safe_dump(payload, sort_keys=False))
    return path


def _v(x):
    return "x".join(map(str, x)) if isinstance(x, (tuple, list)) else x
