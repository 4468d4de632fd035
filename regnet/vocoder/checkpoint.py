"""WaveNet vocoder checkpoints (docs/architecture.md): a ``torch.save`` dict with
``format: "regnet-bench/wavenet"``, ``version``, ``config`` (VocoderConfig as a dict),
``data_config`` (DataConfig as a dict: the mel the network was trained on), ``class_name``,
``step``, ``model`` and ``optimizer`` state dicts. ``config.skip_rule`` says how the layers' skips
combine; files without it are read as 'sum-sqrt', or 'r9y9-2092a64' for an import of the authors'
vocoder (``source.kind == "authors-wavenet"``). Written atomically (temp file + rename)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from regnet.atomic import atomic_path
from regnet.config import SKIP_RULES, Config, DataConfig
from regnet.errors import UserError
from regnet.vocoder.wavenet import WaveNet

log = logging.getLogger(__name__)

FORMAT = "regnet-bench/wavenet"
VERSION = 1
# DataConfig fields that define the mel a vocoder inverts; any other field (fps, backbone...) is
# irrelevant to it.
MEL_FIELDS = ("sample_rate", "n_fft", "win_length", "hop_length", "n_mels", "fmin", "fmax")


def save_vocoder(path: str | Path, model: WaveNet, data_cfg: DataConfig, class_name: str, step: int,
                 optimizer: torch.optim.Optimizer | None = None, extra: dict[str, Any] | None = None) -> None:
    path = Path(path)
    payload = {
        "format": FORMAT, "version": VERSION,
        "config": Config(vocoder=model.cfg).to_dict()["vocoder"],
        "data_config": Config(data=data_cfg).to_dict()["data"],
        "class_name": class_name, "step": int(step),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        **(extra or {}),
    }
    with atomic_path(path, ".pt.tmp") as tmp:
        torch.save(payload, tmp)


def read_vocoder_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: vocoder checkpoint not found")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated or foreign file: name it, no traceback
        raise UserError(f"{path}: not a readable checkpoint ({type(e).__name__})") from None
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        raise UserError(f"{path}: not a regnet-bench WaveNet checkpoint (format "
                        f"{ck.get('format') if isinstance(ck, dict) else type(ck).__name__!r})")
    return ck


def skip_rule_of_legacy(ck: dict[str, Any]) -> str:
    """The skip rule of a checkpoint saved before ``vocoder.skip_rule`` existed."""
    src = ck.get("source")
    return "r9y9-2092a64" if isinstance(src, dict) and src.get("kind") == "authors-wavenet" else "sum-sqrt"


def load_wavenet(path: str | Path, device: torch.device | str = "cpu") -> tuple[WaveNet, DataConfig, dict[str, Any]]:
    """-> (model in eval mode, the DataConfig it was trained with, the raw checkpoint dict)."""
    ck = read_vocoder_file(path)
    vocoder = dict(ck["config"] or {})
    if "skip_rule" not in vocoder:
        # Written before the rule was recorded: imports of the authors' files carry their r9y9
        # commit's recurrence, everything else was trained here with the sum.
        vocoder["skip_rule"] = skip_rule_of_legacy(ck)
        log.info("%s: no vocoder.skip_rule recorded; using '%s'", path, vocoder["skip_rule"])
    cfg = Config.from_dict({"vocoder": vocoder, "data": ck.get("data_config") or {}}, source=str(path))
    if cfg.vocoder.skip_rule not in SKIP_RULES:
        raise UserError(f"{path}: vocoder.skip_rule '{cfg.vocoder.skip_rule}' is not one of {', '.join(SKIP_RULES)}")
    model = WaveNet(cfg.vocoder)
    try:
        model.load_state_dict(ck["model"])
    except RuntimeError as e:
        raise UserError(f"{path}: weights do not fit its own config ({str(e).splitlines()[0]})") from None
    return model.to(device).eval(), cfg.data, ck


def check_mel_compatible(path: str | Path, trained: DataConfig, wanted: DataConfig) -> None:
    """The vocoder must invert the same mel the RegNet model produces."""
    diff = [f"{k} {getattr(trained, k)} vs {getattr(wanted, k)}" for k in MEL_FIELDS
            if getattr(trained, k) != getattr(wanted, k)]
    if diff:
        raise UserError(f"{path}: vocoder was trained on another mel ({'; '.join(diff)})")
