"""WaveNet vocoder checkpoints (docs/architecture.md): a ``torch.save`` dict with
``format: "regnet-bench/wavenet"``, ``version``, ``config`` (VocoderConfig as a dict),
``data_config`` (DataConfig as a dict: the mel the network was trained on), ``class_name``,
``step``, ``model`` and ``optimizer`` state dicts. Written atomically (temp file + rename)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from regnet.atomic import atomic_path
from regnet.config import Config, DataConfig
from regnet.errors import UserError
from regnet.vocoder.wavenet import WaveNet

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


def load_wavenet(path: str | Path, device: torch.device | str = "cpu") -> tuple[WaveNet, DataConfig, dict[str, Any]]:
    """-> (model in eval mode, the DataConfig it was trained with, the raw checkpoint dict)."""
    ck = read_vocoder_file(path)
    cfg = Config.from_dict({"vocoder": ck["config"], "data": ck.get("data_config") or {}}, source=str(path))
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
