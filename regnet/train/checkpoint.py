"""RegNet checkpoints: one ``torch.save`` dict (docs/architecture.md).

``format: "regnet-bench/regnet"``, ``version``, ``config`` (Config.to_dict()), ``data_hash``
(DataConfig.cache_hash() of the features trained on), ``class_name``, ``step``, ``epoch``,
``generator``, ``discriminator``, ``opt_g``, ``opt_d`` (state dicts; optimisers may be None), plus
``sched_g``/``sched_d`` (LR schedules) when saved by the trainer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from regnet.atomic import atomic_path
from regnet.config import Config
from regnet.errors import UserError
from regnet.torchfile import load_torch

FORMAT = "regnet-bench/regnet"
VERSION = 1
STATE_KEYS = ("generator", "discriminator", "opt_g", "opt_d", "sched_g", "sched_d")


def _state(obj: Any) -> dict | None:
    if obj is None:
        return None
    # Unwrap DDP (.module) and torch.compile (._orig_mod) so keys never carry their prefixes.
    for attr in ("module", "_orig_mod"):
        while isinstance(obj, nn.Module) and hasattr(obj, attr) and isinstance(getattr(obj, attr), nn.Module):
            obj = getattr(obj, attr)
    return obj.state_dict()


def save_checkpoint(path: str | Path, cfg: Config, generator: nn.Module, discriminator: nn.Module | None,
                    opt_g: torch.optim.Optimizer | None = None, opt_d: torch.optim.Optimizer | None = None,
                    step: int = 0, epoch: int = 0, class_name: str = "all", data_hash: str | None = None,
                    sched_g: Any = None, sched_d: Any = None, extra: dict | None = None) -> Path:
    """Write atomically (temp file + rename): an interrupted save never leaves a broken file."""
    path = Path(path)
    payload = {
        "format": FORMAT, "version": VERSION, "config": cfg.to_dict(),
        "data_hash": data_hash if data_hash is not None else cfg.data.cache_hash(),
        "class_name": class_name, "step": int(step), "epoch": int(epoch),
        "generator": _state(generator), "discriminator": _state(discriminator),
        "opt_g": _state(opt_g), "opt_d": _state(opt_d),
        "sched_g": _state(sched_g), "sched_d": _state(sched_d),
    }
    if extra:
        payload.update(extra)
    with atomic_path(path, ".pt.tmp") as tmp:
        torch.save(payload, tmp)
    return path


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> dict:
    """The raw checkpoint dict, after checking it is one of ours."""
    path = Path(path)
    ck = load_torch(path, what="checkpoint", map_location=device)
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        found = ck.get("format") if isinstance(ck, dict) else type(ck).__name__
        hint = " (an authors' netG file? use import-checkpoint)" if isinstance(ck, dict) and (
            "optimizer_netG" in ck or "optimizer_netD" in ck) else ""
        raise UserError(f"{path}: not a regnet-bench RegNet checkpoint (format {found!r}){hint}")
    if int(ck.get("version", 0)) > VERSION:
        raise UserError(f"{path}: checkpoint version {ck['version']} is newer than this regnet-bench "
                        f"reads ({VERSION})")
    return ck


def checkpoint_meta(ck: dict) -> dict:
    return {k: v for k, v in ck.items() if k not in STATE_KEYS and k != "config"}


def load_regnet(path: str | Path, device: str | torch.device = "cpu"):
    """(RegNet in eval mode on ``device``, its Config, meta dict with step/epoch/class_name/data_hash)."""
    from regnet.models import RegNet

    ck = load_checkpoint(path, device)
    cfg = Config.from_dict(ck["config"], source=f"{path}: config")
    model = RegNet(cfg)
    try:
        model.load_state_dict(ck["generator"])
    except RuntimeError as e:
        raise UserError(f"{path}: generator weights do not fit its own config "
                        f"({str(e).splitlines()[0][:160]})") from None
    model.to(device).eval()
    return model, cfg, checkpoint_meta(ck)


def config_differences(a: Config, b: Config, sections: tuple[str, ...] = ("data", "model")) -> list[str]:
    """``section.key`` names whose values differ between two configs (in the given sections)."""
    da, db = a.to_dict(), b.to_dict()
    return [f"{s}.{k}" for s in sections for k in da[s] if da[s][k] != db[s].get(k)]


def check_resumable(ck: dict, path: Path, cfg: Config, class_name: str) -> None:
    """A run may only continue from a checkpoint of the same model, data config and class."""
    saved = Config.from_dict(ck["config"], source=f"{path}: config")
    diff = config_differences(saved, cfg)
    if diff:
        shown = ", ".join(f"{d} (checkpoint {_get(saved, d)!r}, now {_get(cfg, d)!r})" for d in diff[:4])
        raise UserError(f"{path}: made with another config: {shown}")
    if ck.get("class_name") != class_name:
        raise UserError(f"{path}: trained on class '{ck.get('class_name')}', this run is for '{class_name}'")


def _get(cfg: Config, dotted: str) -> Any:
    section, key = dotted.split(".", 1)
    return getattr(getattr(cfg, section), key)
